"""ES on CartPole with the population evaluated on a Dask cluster, samples sent as (index, sign).

The linear CartPole policy of EvoGrad's ``demos/cartpole.py`` (push right when
obs @ w > 0), trained with the same estimator and step,

    grad_mu = (1/n) sum_i z_i (w_i - mu) / sigma^2,    mu <- mu + lr * grad_mu

(z = z-scored returns), but each generation's policies are evaluated on a Dask
cluster through ``npevograd.parallel.evaluate``, each task's episodes stepped
together in Gymnasium's vector CartPole (``_cartpole.py``).  The policies come from a
shared noise table (EvoGrad's: ``NoiseTable.evograd()``), so each task carries
mu, sigma and a batch of (index, sign) pairs, and brings back only returns.

By default a LocalCluster of ``--workers`` processes on this machine is started
(loopback only); ``--address tcp://host:8786`` uses an existing cluster instead,
and ``--workers 0`` evaluates in this process.  The run is the same, number for
number, in all three cases.  Run ``python demos/cartpole_dask.py --help``.
"""

from __future__ import annotations

import argparse
import functools
import time
from contextlib import ExitStack

import _cartpole
import numpy as np
from _cartpole import episode_returns

import npevograd as ng
from npevograd.parallel import evaluate

NAME = "cartpole_dask"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="generations (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes; 0: no cluster")
    parser.add_argument("--address", default=None, help="scheduler address of an existing Dask cluster")
    parser.add_argument(
        "--executor", choices=["dask", "process-pool", "loky"], default="dask",
        help="dask (default): a LocalCluster or --address; process-pool: npevograd.parallel.ProcessPool; "
        "loky: loky.get_reusable_executor (no recovery from a dead worker)",
    )
    parser.add_argument("--population", type=int, default=50, help="policies per generation (default 50)")
    parser.add_argument("--sigma", type=float, default=0.5, help="search std (default 0.5)")
    parser.add_argument("--lr", type=float, default=0.03, help="learning rate (default 0.03)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per policy (default 10)")
    parser.add_argument(
        "--batch-size", type=int, default=None,
        help="policies per task (default: the population split evenly over the cluster's threads)",
    )
    parser.add_argument("--print-every", type=int, default=1, help="progress every N steps, 0: quiet")
    args = parser.parse_args(argv)
    if args.workers < 0:
        parser.error(f"--workers must be >= 0, got {args.workers}")
    return args


def start_executor(args: argparse.Namespace, stack: ExitStack):
    """Which executor evaluates (the only difference between a laptop and a cluster), and its threads."""
    if args.address is None and args.workers == 0:
        return None, "this process", 1
    if args.executor == "process-pool":
        from npevograd.parallel import ProcessPool

        return stack.enter_context(ProcessPool(args.workers)), f"a ProcessPool of {args.workers}", args.workers
    if args.executor == "loky":
        import loky

        return loky.get_reusable_executor(args.workers), f"a loky executor of {args.workers}", args.workers
    from dask.distributed import Client, LocalCluster

    if args.address is not None:
        client = stack.enter_context(Client(args.address))
    else:
        cluster = stack.enter_context(
            LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address=None,
            )
        )
        client = stack.enter_context(Client(cluster))
    client.upload_file(_cartpole.__file__, load=False)  # the fitness lives in demos/: the workers import it
    threads = max(1, sum(client.nthreads().values()))
    return client.get_executor(), f"Dask scheduler {client.scheduler.address} ({threads} threads)", threads


def main(argv: list[str] | None = None) -> dict:
    """Train; returns the mean policy's final return, the history and the wall time."""
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    table = ng.NoiseTable.evograd()
    p = ng.Normal(rng.standard_normal(4), sigma=args.sigma, noise=table)  # mu ~ N(0, I), as EvoGrad
    estimator = ng.Mean(shaping=ng.zscore)
    mus, mean_return, resubmitted = [p.params["mu"].copy()], [], 0
    start = time.perf_counter()
    t = 0
    with ExitStack() as stack:
        stack.callback(table.close)
        executor, where, threads = start_executor(args, stack)
        # the vector env steps a batch together: one batch per thread keeps its per-step cost low
        batch_size = args.batch_size or -(-args.population // threads)
        if args.print_every:
            print(f"[{NAME}] evaluating on {where}, {batch_size} policies per task", flush=True)
        for t in range(1, args.steps + 1):
            # every policy of a generation sees the same start states: a batch-independent fitness
            fitness = functools.partial(
                episode_returns, seed=int(rng.integers(2**31)), episodes=args.episodes
            )
            result = evaluate(fitness, p, args.population, rng, executor=executor, batch_size=batch_size)
            resubmitted += result.resubmitted
            if np.ptp(result.fitness) > 0:  # all-equal returns: zscore undefined, no direction to move
                grad = estimator(result.fitness, result.samples, p).grad
                p.params["mu"] += args.lr * grad["mu"]
            mus.append(p.params["mu"].copy())
            mean_return.append(float(result.fitness.mean()))
            if args.print_every and (t % args.print_every == 0 or t == args.steps):
                print(f"[{NAME}] step {t:4d}  population mean return {mean_return[-1]:7.2f}", flush=True)
    final = float(episode_returns(p.params["mu"][None], seed=args.seed + 10**6, episodes=100)[0])
    if args.print_every:
        print(f"[{NAME}] mean policy mu = {np.round(p.params['mu'], 3)}  return {final:.1f} (100 episodes)")
    return {
        "name": NAME,
        "final": final,
        "history": {"mu": np.array(mus), "objective": np.array(mean_return)},
        "resubmitted": resubmitted,
        "seed": args.seed,
        "steps": t,
        "seconds": time.perf_counter() - start,
    }


if __name__ == "__main__":
    main()
