"""Ask/tell evolution strategies, each a short composition of a distribution, an estimator and an update.

The top wing beside ``testing``: it builds on ``distributions``, ``estimators``, ``noise``, ``optim`` and
``parallel``.  By default each maximises: ``x = es.ask()`` gives the (popsize, d) population and
``es.tell(f(x))`` takes one fitness per row, higher is better (``minimize=True``: lower is better).
``OpenES`` (Salimans et al. 2017), ``SNES`` (Schaul et al. 2011), ``XNES`` (Glasmachers et al. 2010),
``PGPE`` (Sehnke et al. 2010, ClipUp optional) and ``EvolvabilityES`` (Gajewski et al. 2019, MaxVar and
MaxEnt), ``CMAES`` (Hansen's tutorial, active by default) and ``SepCMAES`` (Ros and Hansen 2008);
``optimize`` runs one to the end (minimising by default), ``Restarts``/``restart`` run IPOP or BIPOP
around any.
"""

from ._strategy import Best, Result, Strategy
from .cmaes import CMAES, SepCMAES
from .evolvability import EvolvabilityES
from .open_es import OpenES
from .pgpe import PGPE, ClipUp
from .restarts import RestartResult, Restarts, StrategyFactory, restart
from .run import optimize
from .snes import SNES
from .xnes import XNES

__all__ = [
    "CMAES",
    "PGPE",
    "SNES",
    "XNES",
    "Best",
    "ClipUp",
    "EvolvabilityES",
    "OpenES",
    "RestartResult",
    "Restarts",
    "Result",
    "SepCMAES",
    "Strategy",
    "StrategyFactory",
    "optimize",
    "restart",
]
