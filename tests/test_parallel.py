"""Distributed evaluation: identical to the serial run on a process pool and on a real Dask cluster,
what crosses the wire, fitness errors with their index and traceback, and workers killed mid-run.

``python tests/test_parallel.py`` prints the bytes submitted per generation at n=1000, d=100000.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
import traceback
from concurrent.futures import Executor, Future, ProcessPoolExecutor

import numpy as np
import pytest

import npevograd as ng
from npevograd.noise import EncodedSamples, NoiseTable
from npevograd.noise import table as noise_module
from npevograd.parallel import FitnessError, ProcessPool, WorkerLostError, evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N, D = 60, 8


# --- fitness functions (module level: the workers import them) -------------------------------------


def sphere(x: np.ndarray) -> np.ndarray:
    return -np.sum((x - 0.25) ** 2, axis=1)


def behaviours(x: np.ndarray) -> np.ndarray:
    return np.stack([x[:, 0], np.abs(x).max(axis=1)], axis=1)


class FailAt:
    """Raises ZeroDivisionError on the one sample whose first coordinate is ``value``."""

    def __init__(self, value: float):
        self.value = value

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return failing_fitness(x, self.value)


def failing_fitness(x: np.ndarray, value: float) -> np.ndarray:
    if np.any(x[:, 0] == value):
        raise ZeroDivisionError(f"fitness undefined at x[0] = {value}")
    return sphere(x)


def batch_only_failure(x: np.ndarray) -> np.ndarray:
    if x.shape[0] > 1:
        raise RuntimeError("this fitness only works one sample at a time")
    return sphere(x)


def one_value_too_many(x: np.ndarray) -> np.ndarray:
    return np.zeros(x.shape[0] + 1)


class KillOnce:
    """Kills the process evaluating it, the first time any process calls it (a marker file decides)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __call__(self, x: np.ndarray) -> np.ndarray:
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return sphere(x)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


def kill_always(x: np.ndarray) -> np.ndarray:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table() -> NoiseTable:
    t = NoiseTable(1_000_000, 5)
    yield t
    t.close()


@pytest.fixture
def p(table) -> ng.PairedNormal:
    return ng.PairedNormal(np.linspace(-1, 1, D).astype(np.float32), 0.6, noise=table)


@pytest.fixture(scope="module")
def mp_context():
    """forkserver: no fork of a process running Dask's threads; preloaded so new workers start fast."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["numpy", "npevograd.parallel"])
    return ctx


@pytest.fixture(scope="module")
def pool(mp_context):
    with ProcessPool(2, mp_context=mp_context) as executor:
        yield executor


@pytest.fixture(scope="module")
def dask_client():
    """A real two-process Dask cluster on loopback.  allowed-failures=0: the scheduler gives up on a task
    at the first worker death (KilledWorker), so the retries tested are evaluate's own."""
    distributed = pytest.importorskip("dask.distributed")
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def serial(fitness, p, seed=3, **kwargs):
    return evaluate(fitness, p, N, np.random.default_rng(seed), **kwargs)


# --- serial reference ---------------------------------------------------------------------------


def test_serial_run_evaluates_the_draw_in_sample_order(p):
    result = serial(sphere, p)
    assert isinstance(result.samples, EncodedSamples) and result.resubmitted == 0
    expected = p.sample(N, np.random.default_rng(3), encode=True)
    np.testing.assert_array_equal(result.samples.indices, expected.indices)
    np.testing.assert_array_equal(result.fitness, sphere(p.decode(expected)))
    for batch_size in (1, 7, N):
        np.testing.assert_array_equal(serial(sphere, p, batch_size=batch_size).fitness, result.fitness)


def test_evaluation_feeds_the_estimators(p):
    result = serial(behaviours, p)
    x = p.decode(result.samples)
    assert result.fitness.shape == (N, 2)
    ours, reference = ng.Entropy()(result.fitness, result.samples, p), ng.Entropy()(behaviours(x), x, p)
    np.testing.assert_allclose(ours.grad["mu"], reference.grad["mu"], rtol=1e-4, atol=1e-6)
    mean = ng.Mean(shaping=ng.centered_ranks)(serial(sphere, p).fitness, result.samples, p)
    np.testing.assert_allclose(
        mean.grad["mu"], ng.Mean(shaping=ng.centered_ranks)(sphere(x), x, p).grad["mu"], rtol=1e-4, atol=1e-6
    )


def test_given_samples_are_evaluated_instead_of_a_draw(p, pool):
    """samples=: a population drawn elsewhere (a strategy's ask), rows or encoded, evaluated as it is."""
    encoded = p.sample(N, np.random.default_rng(5), encode=True)
    result = evaluate(sphere, p, N, samples=encoded, executor=pool, batch_size=7)
    assert result.samples is encoded
    np.testing.assert_array_equal(result.fitness, sphere(p.decode(encoded)))
    q = ng.Normal(np.zeros(3), 1.0)
    rows = q.sample(N, np.random.default_rng(6))
    np.testing.assert_array_equal(evaluate(sphere, q, N, samples=rows).fitness, sphere(rows))
    with pytest.raises(ValueError, match=f"samples must hold n = {N + 1} samples, got {N}"):
        evaluate(sphere, q, N + 1, samples=rows)
    with pytest.raises(TypeError, match="samples of a distribution with a noise table must be EncodedSamples"):
        evaluate(sphere, p, N, samples=p.decode(encoded))
    with pytest.raises(TypeError, match="samples of a distribution without a noise table must be rows"):
        evaluate(sphere, q, N, samples=encoded)


# --- identical on every executor ------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 7, None])
def test_process_pool_equals_serial(p, pool, batch_size):
    reference = serial(sphere, p)
    result = serial(sphere, p, executor=pool, batch_size=batch_size)
    np.testing.assert_array_equal(result.fitness, reference.fitness)
    np.testing.assert_array_equal(result.samples.indices, reference.samples.indices)


def test_plain_process_pool_executor_equals_serial(p, mp_context):
    with ProcessPoolExecutor(2, mp_context=mp_context) as executor:
        result = serial(behaviours, p, executor=executor, batch_size=9)
    np.testing.assert_array_equal(result.fitness, serial(behaviours, p).fitness)


def test_distributions_without_a_table_send_rows(pool):
    for q in (ng.Normal(np.zeros(3), 1.0), ng.Bernoulli(np.array([-1.0, 0.0, 2.0]))):
        result = serial(sphere, q, executor=pool, batch_size=11)
        assert isinstance(result.samples, np.ndarray)
        np.testing.assert_array_equal(result.samples, q.sample(N, np.random.default_rng(3)))
        np.testing.assert_array_equal(result.fitness, serial(sphere, q).fitness)


@pytest.mark.parametrize("batch_size", [5, None])
def test_dask_cluster_equals_serial(p, dask_client, batch_size):
    executor = dask_client.get_executor()
    for fitness in (sphere, behaviours):
        result = serial(fitness, p, executor=executor, batch_size=batch_size)
        np.testing.assert_array_equal(result.fitness, serial(fitness, p).fitness)


def test_dask_workers_attach_to_the_table_once(p, dask_client, table):
    serial(sphere, p, executor=dask_client.get_executor(), batch_size=3)

    def received() -> list[str]:
        return [repr(t) for t in noise_module._RECEIVED.values()]

    for reports in dask_client.run(received).values():
        tables = [r for r in reports if f"size={table.size}, seed={table.seed}" in r]
        assert len(tables) == 1 and "attached" in tables[0], reports


# --- what crosses the wire ------------------------------------------------------------------------


class RecordingExecutor(Executor):
    """Runs each task here, after a pickle round trip, recording the bytes submitted and returned."""

    def __init__(self):
        self.sent: list[int] = []
        self.returned: list[int] = []

    def submit(self, fn, /, *args, **kwargs) -> Future:
        blob = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        self.sent.append(len(blob))
        fn, args, kwargs = pickle.loads(blob)
        result = fn(*args, **kwargs)
        self.returned.append(len(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)))
        future: Future = Future()
        future.set_result(result)
        return future


def submitted_bytes(n: int, d: int, batch_size: int | None = None) -> dict[str, int]:
    """Bytes pickled into the executor for one generation: encoded samples vs sample rows."""
    table = NoiseTable(max(10 * d, 1_000_000), 1)
    encoded, rows = RecordingExecutor(), RecordingExecutor()
    mu = np.zeros(d, dtype=np.float32)
    evaluate(sphere, ng.Normal(mu, 0.1, noise=table), n, 0, executor=encoded, batch_size=batch_size)
    evaluate(sphere, ng.Normal(mu, 0.1), n, 0, executor=rows, batch_size=batch_size)
    table.close()
    return {
        "batches": len(encoded.sent),
        "encoded_sent": sum(encoded.sent),
        "rows_sent": sum(rows.sent),
        "returned": sum(encoded.returned),
    }


def test_encoded_generation_sends_parameters_and_indices_not_samples():
    n, d = 1000, 20_000
    sizes = submitted_bytes(n, d)
    batches = sizes["batches"]
    assert batches == 16
    # per batch: mu (d float32), 63 indices (int64) and signs (int8), and a few hundred bytes of framing
    assert sizes["encoded_sent"] < batches * (4 * d + 9 * 63 + 1000)
    assert sizes["rows_sent"] >= 4 * n * d  # the sample matrix itself
    assert sizes["returned"] < batches * (8 * 63 + 1000)  # fitness values only
    assert sizes["encoded_sent"] * 60 < sizes["rows_sent"]


# --- fitness errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["serial", "process-pool", "dask"])
def test_fitness_error_names_the_sample_and_keeps_the_traceback(p, where, request):
    executor = {
        "serial": lambda: None,
        "process-pool": lambda: request.getfixturevalue("pool"),
        "dask": lambda: request.getfixturevalue("dask_client").get_executor(),
    }[where]()
    x = p.decode(serial(sphere, p).samples)
    with pytest.raises(FitnessError, match=r"ZeroDivisionError at sample 37 \(batch of samples \[35, 42\)\)") as info:
        serial(FailAt(float(x[37, 0])), p, executor=executor, batch_size=7)
    assert info.value.index == 37 and info.value.batch == (35, 42)
    original = info.value.__cause__
    assert isinstance(original, ZeroDivisionError) and "fitness undefined" in str(original)
    chain = "".join(traceback.format_exception(type(info.value), info.value, info.value.__traceback__))
    assert "in failing_fitness" in chain and 'raise ZeroDivisionError(f"fitness undefined' in chain


def test_fitness_failing_only_on_batches_and_bad_output(p):
    with pytest.raises(FitnessError, match=r"RuntimeError at the batch \(batch of samples \[0, 4\)\)") as info:
        serial(batch_only_failure, p, batch_size=4)
    assert info.value.index is None and isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(FitnessError, match=r"fitness must return one value per sample, shape \(4,\)"):
        serial(one_value_too_many, p, batch_size=4)


def test_evaluate_rejects_bad_arguments(p):
    with pytest.raises(TypeError, match="fitness must be callable, got str"):
        evaluate("sphere", p, 4)
    with pytest.raises(TypeError, match="p must be an npevograd Distribution, got str"):
        evaluate(sphere, "p", 4)
    with pytest.raises(TypeError, match="executor must be a concurrent.futures.Executor or None, got str"):
        evaluate(sphere, p, 4, executor="dask")
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        evaluate(sphere, p, 4, batch_size=0)
    with pytest.raises(ValueError, match="max_retries must be >= 0, got -1"):
        evaluate(sphere, p, 4, max_retries=-1)
    with pytest.raises(ValueError, match="n must be even for PairedNormal"):
        evaluate(sphere, p, 5)


# --- workers killed mid-run -----------------------------------------------------------------------


def test_killed_worker_is_replaced_and_no_sample_is_lost(p, pool, tmp_path):
    replaced = pool.replacements
    result = serial(KillOnce(str(tmp_path / "killed")), p, executor=pool, batch_size=6)
    assert (tmp_path / "killed").exists()  # a worker really died
    assert pool.replacements == replaced + 1 and result.resubmitted >= 1
    np.testing.assert_array_equal(result.fitness, serial(sphere, p).fitness)


def test_plain_process_pool_executor_cannot_recover(p, mp_context, tmp_path):
    with ProcessPoolExecutor(2, mp_context=mp_context) as executor:
        with pytest.raises(WorkerLostError, match="a ProcessPoolExecutor cannot replace a dead worker"):
            serial(KillOnce(str(tmp_path / "killed")), p, executor=executor, batch_size=6)


def test_retries_are_bounded(p, pool):
    with pytest.raises(WorkerLostError, match=r"were lost 2 times: the worker evaluating them died each time"):
        serial(kill_always, p, executor=pool, batch_size=30, max_retries=1)


def test_killed_dask_worker_batch_is_retried_elsewhere(p, dask_client, tmp_path):
    result = serial(KillOnce(str(tmp_path / "killed")), p, executor=dask_client.get_executor(), batch_size=6)
    assert (tmp_path / "killed").exists() and result.resubmitted >= 1
    np.testing.assert_array_equal(result.fitness, serial(sphere, p).fitness)


# --- worker memory: tables released, no orphans ---------------------------------------------------


def deleted_segments_mapped(table: NoiseTable) -> tuple[int, list[str], int]:
    """In a worker, after receiving ``table``: its pid, the unlinked table segments it still maps, its cache size."""
    table.array  # noqa: B018
    time.sleep(0.3)  # hold this worker so the other probes go to the others
    with open("/proc/self/maps") as maps:
        deleted = sorted({ln.split()[-2] for ln in maps if noise_module.SEGMENT_PREFIX in ln and "(deleted)" in ln})
    return os.getpid(), deleted, len(noise_module._RECEIVED)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc/self/maps (Linux)")
def test_workers_release_the_tables_their_owner_closed(pool):
    for k in range(20):  # 20 tables, each closed by its owner once its generation is done
        with NoiseTable(200_000, 100 + k) as t:
            serial(sphere, ng.PairedNormal(np.zeros(D, np.float32), 0.6, noise=t), executor=pool, batch_size=6)
    with NoiseTable(200_000, 99) as probe:
        probe.array  # noqa: B018
        reports = list(pool.map(deleted_segments_mapped, [probe] * 4))
    assert len({pid for pid, _, _ in reports}) == 2  # both workers reported
    for _, deleted, cached in reports:
        assert deleted == [] and cached <= noise_module._RECEIVED_MAX


START_METHODS = multiprocessing.get_all_start_methods()
OWNER = """
import functools, multiprocessing, os, sys, time
import numpy as np
import npevograd as ng
from npevograd.parallel import ProcessPool, evaluate

pool = ProcessPool(2, mp_context=multiprocessing.get_context(sys.argv[1]))
table = ng.NoiseTable(200_000, 7)
evaluate(functools.partial(np.sum, axis=1), ng.Normal(np.zeros(4), 0.1, noise=table), 8, 0, executor=pool)
print(table.segment_name, *pool._pool._processes, flush=True)
time.sleep(120)
"""


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/dev/shm") or not os.path.isdir("/proc"), reason="Linux /proc, /dev/shm")
@pytest.mark.parametrize("method", [m for m in ("fork", "forkserver", "spawn") if m in START_METHODS])
def test_workers_exit_when_the_pools_owner_is_killed(method):
    # fork and spawn: the owner is the workers' parent; forkserver: the forkserver is, and outlives the owner
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    owner = subprocess.Popen([sys.executable, "-c", OWNER, method], stdout=subprocess.PIPE, text=True, env=env)
    segment, *workers = owner.stdout.readline().split()
    owner.stdout.close()
    assert len(workers) == 2 and all(process_alive(int(w)) for w in workers)
    assert os.path.exists(f"/dev/shm/{segment}")
    owner.send_signal(signal.SIGKILL)
    assert owner.wait(timeout=30) == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        any(process_alive(int(w)) for w in workers) or os.path.exists(f"/dev/shm/{segment}")
    ):
        time.sleep(0.1)
    assert not any(process_alive(int(w)) for w in workers)  # no orphans
    assert not os.path.exists(f"/dev/shm/{segment}")  # the resource tracker unlinked it once they were gone


# --- the demo -------------------------------------------------------------------------------------


def load_demo():
    if os.path.join(REPO, "demos") not in sys.path:  # the demo imports its CartPole as ``_cartpole``
        sys.path.append(os.path.join(REPO, "demos"))
    spec = importlib.util.spec_from_file_location("cartpole_dask", os.path.join(REPO, "demos", "cartpole_dask.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cartpole_demo_on_the_cluster_equals_the_laptop_run(dask_client, capsys):
    pytest.importorskip("gymnasium")
    demo = load_demo()
    args = ["--steps", "3", "--seed", "4", "--population", "20", "--episodes", "2"]
    on_cluster = demo.main([*args, "--address", dask_client.scheduler.address])
    on_laptop = demo.main([*args, "--workers", "0"])
    np.testing.assert_array_equal(on_cluster["history"]["mu"], on_laptop["history"]["mu"])
    np.testing.assert_array_equal(on_cluster["history"]["objective"], on_laptop["history"]["objective"])
    assert on_cluster["steps"] == 3 and 1 <= on_cluster["final"] <= 200
    assert "step" in capsys.readouterr().out


def test_cartpole_demo_help(capsys):
    with pytest.raises(SystemExit) as info:
        load_demo().main(["--help"])
    assert info.value.code == 0 and "--workers" in capsys.readouterr().out


if __name__ == "__main__":
    n, d = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (1000, 100_000)
    for batch_size in (None, 250):
        sizes = submitted_bytes(n, d, batch_size)
        print(
            f"n={n} d={d} batches={sizes['batches']}: encoded {sizes['encoded_sent']:,} bytes sent, "
            f"sample rows {sizes['rows_sent']:,} bytes sent "
            f"(ratio {sizes['rows_sent'] / sizes['encoded_sent']:.0f}x); "
            f"fitness returned {sizes['returned']:,} bytes"
        )
