"""Ask/tell evolution strategies, each a short composition of a distribution, an estimator and an update.

The top wing beside ``testing``: it builds on ``distributions``, ``estimators``, ``noise`` and ``optim``.
All maximise: ``x = es.ask()`` gives the (popsize, d) population and ``es.tell(f(x))`` takes one fitness
per row, higher is better.  ``OpenES`` (Salimans et al. 2017), ``SNES`` (Schaul et al. 2011), ``XNES``
(Glasmachers et al. 2010), ``PGPE`` (Sehnke et al. 2010, ClipUp optional) and ``EvolvabilityES``
(Gajewski et al. 2019, MaxVar and MaxEnt), ``CMAES`` (Hansen's tutorial, active by default) and
``SepCMAES`` (Ros and Hansen 2008).
"""

from ._strategy import Best, Strategy
from .cmaes import CMAES, SepCMAES
from .evolvability import EvolvabilityES
from .open_es import OpenES
from .pgpe import PGPE, ClipUp
from .snes import SNES
from .xnes import XNES

__all__ = ["CMAES", "PGPE", "SNES", "XNES", "Best", "ClipUp", "EvolvabilityES", "OpenES", "SepCMAES", "Strategy"]
