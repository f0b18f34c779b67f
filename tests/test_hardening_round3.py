"""Issue 25 (hardening, third round): one regression test per defect outside ``algorithms/``, by defect number.

Each test's docstring names its defect; the issue text is the bug report.  ``python tests/test_hardening_round3.py``
prints how long ``evaluate`` takes to raise defect 1's clear error on a one-worker Dask LocalCluster.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import npevograd as ng

# --------------------------------------------------------------------------- defect 3: inf samples


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["normal", "paired", "table", "mvn"])
def test_defect_3_a_sample_that_overflows_is_a_value_error_naming_sigma_and_mu(kind, dtype):
    """Defect 3: sample() returned inf samples silently (sigma = 1e308); now a ValueError naming sigma and mu."""
    big = float(np.finfo(dtype).max)
    mu = np.zeros(2, dtype)
    if kind == "mvn":
        p = ng.MultivariateNormal(mu, np.eye(2) * big)
        named = "scale_tril"
    elif kind == "table":
        p = ng.Normal(mu, big, noise=ng.NoiseTable(1000, 0))
        named = "sigma"
    else:
        p = (ng.PairedNormal if kind == "paired" else ng.Normal)(mu, big)
        named = "sigma"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way to the error
        with pytest.raises(ValueError, match=rf"samples overflow {np.dtype(dtype)}.*largest \|?{named}\|? .*mu"):
            p.sample(50, rng=0)
        if kind == "table":  # the encoding is checked too: its decoded samples would overflow
            with pytest.raises(ValueError, match="samples overflow"):
                p.sample(50, rng=0, encode=True)


def test_defect_3_samples_near_the_limit_that_fit_are_returned_unchanged():
    """Defect 3: the check scans only distributions near the limit, and a finite draw there is still returned."""
    p = ng.Normal(np.zeros(2), 1e300)
    x = p.sample(20, rng=1)
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x, 1e300 * np.random.default_rng(1).standard_normal((20, 2)))


# --------------------------------------------------------------------------- defect 7: inf covariance


def test_defect_7_an_overflowing_covariance_is_a_value_error_naming_scale_tril():
    """Defect 7: MultivariateNormal(mu, eye * 1e300).covariance returned inf unchecked."""
    p = ng.MultivariateNormal(np.zeros(2), np.eye(2) * 1e300)
    with pytest.raises(ValueError, match=r"covariance scale_tril @ scale_tril.T overflows float64.*1e\+300"):
        p.covariance  # noqa: B018
    np.testing.assert_allclose(ng.MultivariateNormal(np.zeros(2), np.eye(2) * 1e150).covariance, np.eye(2) * 1e300)


# --------------------------------------------------------------------------- defect 9: triangular solves


def test_defect_9_a_valid_factor_that_lu_calls_singular_is_solved():
    """Defect 9: LinAlgError 'Singular matrix' for L = [[1e-200, 0], [1e200, 1e-200]]; log_prob(0) = 919.2."""
    L = np.array([[1e-200, 0.0], [1e200, 1e-200]])
    p = ng.MultivariateNormal(np.zeros(2), L, learn_scale=True)
    expected = -2 * math.log(1e-200) - math.log(2 * math.pi)  # u = 0: -log det L - (d/2) log 2 pi
    np.testing.assert_allclose(p.log_prob(np.zeros((1, 2))), [expected], rtol=1e-14)
    assert abs(expected - 919.196) < 1e-3
    x = np.array([[1e-200, 1e200]])  # x = L [1, 0]: u = (1, 0)
    np.testing.assert_allclose(p.whiten(x), [[1.0, 0.0]], atol=1e-12)
    score = p.score(np.array([[0.0, 0.0]]))  # u = v = 0: d/dL = -diag(1/L_jj)
    np.testing.assert_allclose(score["scale_tril"][0], -np.diag([1e200, 1e200]), rtol=1e-14)


@pytest.mark.parametrize("d", [2, 16, 17, 40])  # substitution up to d = 16, LAPACK's trtrs above
def test_defect_9_both_triangular_solves_handle_the_factor_lu_calls_singular(d):
    """Defect 9: the same factor's structure at every dimension: tiny diagonal, one huge entry below it."""
    L = np.eye(d) * 1e-200
    L[1, 0] = 1e200
    p = ng.MultivariateNormal(np.zeros(d), L)
    expected = -d * math.log(1e-200) - 0.5 * d * math.log(2 * math.pi)
    np.testing.assert_allclose(p.log_prob(np.zeros((3, d))), np.full(3, expected), rtol=1e-14)
    z = np.random.default_rng(d).standard_normal((4, d))
    z[:, 0] = 0  # x_1 = 1e200 z_0 + 1e-200 z_1 keeps z_1 only if z_0 = 0 (else 1e-200 z_1 is lost in rounding)
    x = z @ L.T  # x = L z: whiten gives z back
    np.testing.assert_allclose(p.whiten(x), z, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- defects 4 and 11: values under ratios


def _reuse_case(shift: float, n: int = 40):
    """Samples of p and log q(x) = log p(x) - shift: every ratio rho_i = e^shift (up to the rounding of the shift)."""
    p = ng.Normal(np.zeros(3), 1.0, learn_sigma=True)
    x = p.sample(n, rng=0)
    return p, x, p.log_prob(x) - shift


def test_defect_4_mean_with_a_baseline_is_exact_where_the_terms_overflow():
    """Defect 4: Mean(baseline='mean')(1e300, ratios e^700).value was nan; exactly 1e300 (the baseline cancels)."""
    p, x, lq = _reuse_case(700.0)
    for baseline in ("mean", "loo"):
        r = ng.Mean(baseline=baseline)(np.full(40, 1e300), x, p, log_proposal=lq)
        assert r.value == 1e300
        assert all(np.array_equal(g, np.zeros_like(g)) for g in r.grad.values())


def test_defect_4_mean_value_is_finite_where_the_sum_of_terms_overflows():
    """Defect 4: Mean()(1e300, ratios e^16).value was inf; exactly 1e300 * mean(rho) = 8.9e306, grad finite."""
    p, x, lq = _reuse_case(16.0)
    r = ng.Mean()(np.full(40, 1e300), x, p, log_proposal=lq)
    np.testing.assert_allclose(r.value, 1e300 * math.exp(16.0), rtol=1e-12)
    assert all(np.isfinite(g).all() for g in r.grad.values())


def test_defect_4_entropy_value_under_huge_ratios_follows_its_scaling_law():
    """Defect 4: Entropy()(..., ratios e^702).value was -inf; about -5e307, as J(c r) = c (J(r) - log(c) sum r / n)."""
    behaviours = np.sin(np.arange(40.0))
    p, x, lq = _reuse_case(0.0)
    base = ng.Entropy()(behaviours, x, p, log_proposal=lq)  # rho = 1 exactly
    shifted = ng.Entropy()(behaviours, x, p, log_proposal=lq - 702.0)
    c = float(np.mean(shifted.ratios))
    np.testing.assert_allclose(np.ptp(shifted.ratios) / c, 0.0, atol=1e-12)  # a common ratio factor
    np.testing.assert_allclose(shifted.value, c * (base.value - math.log(c)), rtol=1e-10)
    assert -1e308 < shifted.value < -1e307


def test_defect_4_a_value_that_itself_overflows_is_named():
    """Defect 4: where J itself exceeds float64 the error says so, instead of returning inf."""
    p, x, lq = _reuse_case(700.0)
    with pytest.raises(ValueError, match="Mean: the objective J under these importance ratios is inf"):
        ng.Mean()(np.full(40, 1e300), x, p, log_proposal=lq)


def test_defect_11_normalized_mean_with_huge_values_and_ratios_is_exact():
    """Defect 11: Mean(normalize=True), values 1e300, ratios e^16 raised 'w must be finite'; exact J = 1e300, grad 0."""
    p, x, lq = _reuse_case(16.0)
    r = ng.Mean(normalize=True)(np.full(40, 1e300), x, p, log_proposal=lq)
    assert r.value == 1e300
    assert all(np.array_equal(g, np.zeros_like(g)) for g in r.grad.values())


@pytest.mark.parametrize("reuse", [False, True])
def test_defect_11_overflowing_weights_name_the_estimator_and_the_values_not_w(reuse):
    """Defect 11: 'w must be finite' named an internal variable; now the estimator, the sample and the cause."""
    p, x, lq = _reuse_case(5.0 if reuse else 0.0, n=4)
    values = np.array([1.7e308, -1.7e308, 1.7e308, -1.7e308])  # J = 0 exactly; a weight overflows
    if reuse:
        with pytest.raises(ValueError, match=r"Mean: the weight of sample 0 overflows .*importance ratio rho_i"):
            ng.Mean()(values, x, p, log_proposal=lq)
    else:
        with pytest.raises(ValueError, match=r"Mean: the weight of sample 0 overflows .*dJ/dr_i at r = 1.*values"):
            ng.Mean(baseline="loo")(values, x, p)


# --------------------------------------------------------------------------- defect 8: ReuseBuffer memory


def _filled_buffer(k: int, n: int = 10, d: int = 3) -> tuple[ng.ReuseBuffer, int, int]:
    """A buffer of k generations; returns it with the bytes it holds and log_proposal's peak (tracemalloc)."""
    import tracemalloc

    p = ng.Normal(np.zeros(d), 1.0, learn_sigma=True)
    rng = np.random.default_rng(0)
    tracemalloc.start()
    try:
        buffer = ng.ReuseBuffer(k)
        for _ in range(k):
            x = p.sample(n, rng)
            buffer.add(x, -np.sum(x**2, axis=1), p)
            p.params["mu"] += 0.01
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        buffer.log_proposal  # noqa: B018
        peak = tracemalloc.get_traced_memory()[1] - held
    finally:
        tracemalloc.stop()
    return buffer, held, peak


def test_defect_8_reuse_buffer_memory_grows_linearly_in_k(monkeypatch):
    """Defect 8: ReuseBuffer held k^2 n log-densities (200 MB at k = 600); now O(k n), log q in bounded blocks."""
    from scipy.special import logsumexp

    from npevograd.estimators import reuse

    block = 120 * 100  # k x 100 samples (10 generations) a block: 12 blocks for the 1,200 samples below
    monkeypatch.setattr(reuse, "BLOCK_ENTRIES", block)
    small, held_small, _ = _filled_buffer(30)
    large, held_large, peak_large = _filled_buffer(120)
    assert held_large / held_small < 4 * 1.5  # k four times larger: linear 4, the old quadratic 16
    # one block of float64 log-densities and numpy's 64 KB ufunc buffer, not the k x N matrix (1.15 MB)
    assert peak_large < 8 * block + 2**17
    snapshots = [g.p for g in large._generations]
    expected = logsumexp(np.stack([s.log_prob(large.x) for s in snapshots]), axis=0) - math.log(120)
    np.testing.assert_allclose(large.log_proposal, expected, rtol=1e-13)


def test_defect_8_a_buffer_pickled_with_per_pair_log_densities_still_loads():
    """Defect 8: buffers pickled before the fix held _ids, _next_id and per-generation log_p; they load and work."""
    import pickle

    buffer, _, _ = _filled_buffer(3)
    expected = buffer.log_proposal
    old_state = dict(vars(buffer), _ids=[0, 1, 2], _next_id=3)  # the attributes the old buffer had
    del old_state["_log_proposal"]
    for g in buffer._generations:
        g.log_p = {i: np.zeros(g.x.shape[0]) for i in range(3)}  # stale values: must not be used
    buffer.__dict__ = old_state
    loaded = pickle.loads(pickle.dumps(buffer))
    assert sorted(vars(loaded)) == ["_generations", "_log_proposal", "k"]
    assert all(not hasattr(g, "log_p") for g in loaded._generations)
    np.testing.assert_array_equal(loaded.log_proposal, expected)


# --------------------------------------------------------------------------- defects 5, 13 and 15: testing


class SmallAbsTerm(ng.Mean):
    """J = sum(f r) / n + c |r_0|^2: abs hides the small term from the complex step (its Im is 0)."""

    def __init__(self, c: float, right: bool):
        super().__init__()
        self.c, self.right = c, right

    def objective(self, values, ratios):
        return np.sum(np.asarray(values) * ratios) / len(values) + self.c * abs(ratios[0]) ** 2

    def weights(self, values, n):
        value, w = super().weights(values, n)
        w = w.copy()
        if self.right:
            w[0] += 2 * self.c  # d(c |r_0|^2)/dr_0 at r = 1
        return value + self.c, w


@pytest.mark.parametrize("c", [1e-7, 1e-6, 1e-5, 1e-3])
def test_defect_5_a_small_non_analytic_term_gets_the_right_verdict(c):
    """Defect 5: for sum(f r)/n + c |r_0|^2 (c 1e-7..1e-5) the right weights failed and the wrong ones passed."""
    from npevograd.testing import assert_weights_close

    values = np.sin(np.arange(40.0))
    assert_weights_close(SmallAbsTerm(c, right=True), values)
    with pytest.raises(AssertionError, match=r"weights: 1 of 40 entries differ.*worst weights\[0\]") as info:
        assert_weights_close(SmallAbsTerm(c, right=False), values)
    assert "central differences (objective is not complex-analytic in r: its complex-step derivative" in str(info.value)


class Wiggle(ng.Mean):
    """A term 1e-3 |r_0| sin(1e6 |r_0|): not complex-analytic, and too wiggly for central differences at h ~ 6e-6."""

    def objective(self, values, ratios):
        r0 = abs(ratios[0])
        return np.sum(np.asarray(values) * ratios) / len(values) + 1e-3 * r0 * np.sin(1e6 * r0)


def test_defect_5_no_verdict_where_neither_derivative_resolves_the_objective():
    """Defect 5: a verdict is right or says it cannot decide (CannotDecide, an AssertionError)."""
    from npevograd.testing import CannotDecide, assert_weights_close

    with pytest.raises(CannotDecide, match=r"Wiggle at r = 1: cannot decide: .*central differences change by"):
        assert_weights_close(Wiggle(), np.sin(np.arange(10.0)))


def _raising_on_complex(error: type[BaseException]) -> ng.Mean:
    class RealOnly(ng.Mean):
        def objective(self, values, ratios):
            if np.iscomplexobj(ratios):
                raise error("real ratios only")
            return np.sum(np.asarray(values) * ratios) / len(values)

    return RealOnly()


@pytest.mark.parametrize("error", [NotImplementedError, ZeroDivisionError, AttributeError, FloatingPointError])
def test_defect_13_an_objective_raising_anything_on_complex_ratios_falls_back(error):
    """Defect 13: NotImplementedError/ZeroDivisionError/AttributeError/FloatingPointError escaped on complex ratios."""
    from npevograd.testing import assert_weights_close

    values = np.sin(np.arange(6.0))
    value, w = assert_weights_close(_raising_on_complex(error), values)
    np.testing.assert_array_equal(w, values / 6)


def test_defect_13_an_estimator_without_objective_is_a_type_error():
    """Defect 13: an Estimator without objective raised NotImplementedError where the docs say TypeError."""
    from npevograd.testing import assert_weights_close

    class Plain(ng.Estimator):
        def weights(self, values, n):
            return 0.0, np.zeros(n)

    with pytest.raises(TypeError, match=r"Plain has no objective\(values, ratios\)"):
        assert_weights_close(Plain(), np.ones(4))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"rtol": "x"}, TypeError, "rtol must be a number >= 0 or None, got str 'x'"),
        ({"rtol": -1}, ValueError, "rtol must be a finite number >= 0 or None, got -1"),
        ({"atol": float("nan")}, ValueError, "atol must be a finite number >= 0 or None, got nan"),
        ({"atol": True}, TypeError, "atol must be a number >= 0 or None, got bool True"),
    ],
)
def test_defect_13_bad_tolerances_are_named(kwargs, error, message):
    """Defect 13: rtol='x' was not named and rtol=-1 was accepted."""
    from npevograd.testing import assert_weights_close

    with pytest.raises(error, match=message):
        assert_weights_close(ng.Mean(), np.ones(4), **kwargs)


def test_defect_15_a_nan_objective_is_undecided_without_warnings():
    """Defect 15: assert_weights_close with a NaN objective leaked RuntimeWarning 'All-NaN slice'."""
    from npevograd.testing import CannotDecide, assert_weights_close

    class NaNObjective(ng.Mean):
        def objective(self, values, ratios):
            return np.nan * np.sum(ratios)

    class NaNWeights(ng.Mean):
        def weights(self, values, n):
            return 0.0, np.full(n, np.nan)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CannotDecide, match="NaNObjective at r = 1: cannot decide: its objective J"):
            assert_weights_close(NaNObjective(), np.ones(4))
        with pytest.raises(AssertionError, match="weights: 4 of 4 entries differ; max abs err nan"):
            assert_weights_close(NaNWeights(), np.ones(4))


@pytest.mark.parametrize("scale", [1e300, 1e308, 1.7e308])
@pytest.mark.parametrize("reuse", [False, True])
def test_defect_15_entropy_of_behaviours_near_the_limit_warns_nothing(scale, reuse):
    """Defect 15: Entropy(standardize=False) with behaviours at 1e300 leaked RuntimeWarnings from _kde.py.

    Behaviours that far apart make the kernel the identity: J = log n exactly.
    """
    p, x, lq = _reuse_case(0.0)
    behaviours = np.sin(np.arange(40.0))[:, None] * scale
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kwargs = {"log_proposal": lq} if reuse else {}
        estimate = ng.Entropy(standardize=False)(behaviours, x, p, **kwargs)
    np.testing.assert_allclose(estimate.value, math.log(40), rtol=1e-15)


# --------------------------------------------------------------------------- defects 1, 10, 13 and "Also": parallel

CLIENT_ONLY = "npevograd_round3_client_only"  # a module in this process's sys.modules only, not the workers'


def _client_only_fitness(x: np.ndarray) -> np.ndarray:
    return -np.sum(x**2, axis=1)


def _install_client_only() -> None:
    import sys
    import types

    module = types.ModuleType(CLIENT_ONLY)
    module.fitness = _client_only_fitness  # type: ignore[attr-defined]
    sys.modules[CLIENT_ONLY] = module


class ClientOnlyFitness:
    """Unpickles by importing a module the workers lack: fine here, ModuleNotFoundError on a worker."""

    def __reduce__(self):
        import importlib

        return (importlib.import_module, (CLIENT_ONLY,))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _client_only_fitness(x)


def slow_first_all_fail(x: np.ndarray) -> np.ndarray:
    """Raises on every sample; the batch holding sample 0 (x[:, 0] == FIRST) raises 0.3 s later than the others."""
    import time

    if np.any(x[:, 0] == FIRST):
        time.sleep(0.3)
    raise ArithmeticError("fitness fails everywhere")


P_PARALLEL = ng.Normal(np.zeros(3), 1.0)
FIRST = float(P_PARALLEL.sample(1, rng=np.random.default_rng(11))[0, 0])  # sample 0 of the draw below


@pytest.fixture(scope="module")
def forkserver_pool():
    import multiprocessing

    from npevograd.parallel import ProcessPool

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPool(2, mp_context=multiprocessing.get_context(method)) as pool:
        yield pool


@pytest.fixture(scope="module")
def small_dask_cluster():
    """One worker process (its own sys.modules), one thread: about half a second to start."""
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_defect_1_a_fitness_dask_workers_cannot_unpickle_is_a_clear_error_not_a_hang(small_dask_cluster):
    """Defect 1: evaluate() on Dask waited forever for a fitness the workers cannot unpickle; now a TypeError."""
    import time

    from npevograd.parallel import evaluate

    _install_client_only()
    executor = small_dask_cluster.get_executor()
    start = time.perf_counter()
    with pytest.raises(TypeError, match=rf"cannot be unpickled on the ClientExecutor's workers.*{CLIENT_ONLY}") as info:
        evaluate(ClientOnlyFitness(), P_PARALLEL, 8, rng=0, executor=executor)
    assert time.perf_counter() - start < 30  # seconds, generous on a loaded machine (measured: see the report)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    # the cluster still works, and a fitness it can unpickle (a lambda: Dask pickles it by value) runs
    values = evaluate(lambda x: -np.sum(x**2, axis=1), P_PARALLEL, 8, rng=0, executor=executor).fitness
    np.testing.assert_array_equal(values, evaluate(_client_only_fitness, P_PARALLEL, 8, rng=0).fitness)


def _rebuild_outside(client_pid: int) -> SchedulerCannotUnpickle:
    import os

    if os.getpid() == client_pid:  # this process, where a LocalCluster's scheduler runs
        raise ModuleNotFoundError("No module named 'workers_only' (raised unpickling the fitness in the client)")
    return SchedulerCannotUnpickle(client_pid)


class SchedulerCannotUnpickle:
    """Unpickles on the workers but not in this process, where a LocalCluster's scheduler deserializes tasks."""

    def __init__(self, client_pid: int):
        self.client_pid = client_pid

    def __reduce__(self):
        return (_rebuild_outside, (self.client_pid,))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _client_only_fitness(x)


def test_defect_13_a_fitness_the_dask_scheduler_cannot_unpickle_is_named(small_dask_cluster):
    """Defect 13: a Dask scheduler-side unpickling failure was a bare RuntimeError; now a TypeError saying so."""
    import os

    from npevograd.parallel import evaluate

    with pytest.raises(
        TypeError, match=r"(?s)fitness cannot be unpickled where the ClientExecutor needs it.*Dask scheduler"
    ):
        evaluate(SchedulerCannotUnpickle(os.getpid()), P_PARALLEL, 8, rng=0, executor=small_dask_cluster.get_executor())


def test_defect_10_a_fitness_pool_workers_cannot_unpickle_names_the_unpickling_error(forkserver_pool):
    """Defect 10: ProcessPool reported WorkerLostError after three restarts; now the unpickling error, chained."""
    from npevograd.parallel import evaluate

    _install_client_only()
    before = forkserver_pool.replacements
    with pytest.raises(
        TypeError, match=r"cannot be unpickled on the ProcessPool's workers: ModuleNotFoundError"
    ) as info:
        evaluate(ClientOnlyFitness(), P_PARALLEL, 8, rng=0, executor=forkserver_pool)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    assert "Traceback" in str(info.value.__cause__.__cause__)  # the worker's traceback
    assert forkserver_pool.replacements == before  # no worker died


def test_defect_13_a_lambda_on_a_process_pool_is_named(forkserver_pool):
    """Defect 13: a lambda fitness on ProcessPool raised a bare AttributeError (can't pickle a local object)."""
    from npevograd.parallel import evaluate

    with pytest.raises(
        TypeError, match=r"fitness cannot be pickled to send to the ProcessPool's workers.*module level"
    ):
        evaluate(lambda x: x[:, 0], P_PARALLEL, 8, rng=0, executor=forkserver_pool)


def test_defect_13_a_shut_down_executor_is_named():
    """Defect 13: a shut-down executor raised RuntimeError('cannot schedule new futures after shutdown')."""
    from concurrent.futures import ThreadPoolExecutor

    from npevograd.parallel import evaluate

    executor = ThreadPoolExecutor(1)
    executor.shutdown()
    with pytest.raises(ValueError, match=r"executor \(ThreadPoolExecutor\) has been shut down"):
        evaluate(_client_only_fitness, P_PARALLEL, 8, rng=0, executor=executor)


def test_defect_13_a_closed_dask_client_is_named():
    """Defect 13 (the Dask form of a shut-down executor): ClosedClientError from deep inside submit."""
    distributed = pytest.importorskip("dask.distributed")
    from npevograd.parallel import evaluate

    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    client = distributed.Client(cluster)
    executor = client.get_executor()
    client.close()
    cluster.close()
    with pytest.raises(ValueError, match=r"executor \(ClientExecutor\) has been shut down.*Client is closed"):
        evaluate(_client_only_fitness, P_PARALLEL, 8, rng=0, executor=executor)


def test_also_fitness_error_reports_the_lowest_failing_sample_under_a_pool(forkserver_pool):
    """Also: FitnessError's index followed completion order under pools (sample 10, serial 0); now the lowest."""
    from npevograd.parallel import FitnessError, evaluate

    for executor in (None, forkserver_pool):
        with pytest.raises(FitnessError, match="ArithmeticError at sample 0 ") as info:
            evaluate(slow_first_all_fail, P_PARALLEL, 40, rng=np.random.default_rng(11), executor=executor)
        assert info.value.index == 0 and info.value.batch == (0, 3)


def _time_defect_1(repeats: int = 5) -> None:
    """Print the seconds from evaluate() to defect 1's TypeError (a fitness the workers cannot unpickle)."""
    import time

    import distributed

    from npevograd.parallel import evaluate

    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(cluster)
    _install_client_only()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            try:
                evaluate(ClientOnlyFitness(), P_PARALLEL, 64, rng=0, executor=client.get_executor())
            except TypeError:
                print(f"defect 1: clear TypeError after {time.perf_counter() - start:.3f} s")
    finally:
        client.close()
        cluster.close()


def _measure_defect_8(k: int = 600) -> None:
    """Print the ReuseBuffer's memory at k generations of 50 samples, d = 5 (the issue's case)."""
    import time

    start = time.perf_counter()
    buffer, held, peak = _filled_buffer(k, n=50, d=5)
    elapsed = time.perf_counter() - start
    print(
        f"defect 8: k={k}, n=50, d=5: holds {held / 1e6:.1f} MB, log_proposal peak {peak / 1e6:.1f} MB, {elapsed:.1f} s"
    )


if __name__ == "__main__":
    _time_defect_1()
    _measure_defect_8()
