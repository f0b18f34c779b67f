"""Noise table and encoded samples: content, sharing and clean-up, EvoGrad's samples bit for bit,
and every use of encoded samples (decode, weighted_score, estimators) against the decoded array."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import npevograd as ng
from npevograd.noise import EncodedSamples, NoiseTable, _shared_memory
from npevograd.noise import table as noise_module
from npevograd.sampling import _blocks

needs_dev_shm = pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="POSIX shared memory in /dev/shm")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def randn_table(size: int, seed: int, dtype=np.float32) -> np.ndarray:
    return np.random.RandomState(seed).randn(size).astype(dtype)


@pytest.fixture(scope="module")
def table() -> NoiseTable:
    t = NoiseTable(200_000, 11)
    yield t
    t.close()


# --- the table itself ---------------------------------------------------------------------------


def test_table_is_lazy_and_equals_seeded_randn():
    t = NoiseTable(5000, 3, shared=False)
    assert not t.built
    first = t.array
    assert t.built and t.array is first  # built once, then reused
    assert first.dtype == np.float32 and first.shape == (5000,)
    np.testing.assert_array_equal(first, randn_table(5000, 3))
    assert not first.flags.writeable


def test_float64_table_keeps_full_precision():
    t = NoiseTable(1000, 5, dtype=np.float64, shared=False)
    np.testing.assert_array_equal(t.array, np.random.RandomState(5).randn(1000))


def test_chunked_fill_equals_one_draw(monkeypatch):
    monkeypatch.setattr(_shared_memory, "_FILL_CHUNK", 333)
    t = NoiseTable(2500, 8, shared=False)
    np.testing.assert_array_equal(t.array, randn_table(2500, 8))


def test_import_builds_nothing():
    code = "import npevograd, npevograd.noise.table as m, sys; print(len(m._LIVE), len(m._RECEIVED))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0"]


def test_get_rows_and_indices(table):
    arr = table.array
    np.testing.assert_array_equal(table.get(17, 5), arr[17:22])
    np.testing.assert_array_equal(table.rows([3, 0, 3], 4), np.stack([arr[3:7], arr[0:4], arr[3:7]]))
    idx = table.sample_index(np.random.default_rng(0), 10, 1000)
    assert idx.dtype == np.int64 and idx.min() >= 0 and idx.max() <= table.size - 10


def test_randomstate_indices_are_evograds_one_at_a_time_draws(table):
    d, n = 7, 500
    ours = table.sample_index(np.random.RandomState(4), d, n)
    rs = np.random.RandomState(4)
    evograd_style = [rs.randint(0, table.size - d + 1) for _ in range(n)]
    np.testing.assert_array_equal(ours, evograd_style)


def test_contract_equals_dense_sums_over_several_blocks(table, monkeypatch):
    monkeypatch.setattr(_blocks, "BLOCK_BYTES", 64 * 8)  # d = 30, float64: 2 windows per block
    rng = np.random.default_rng(1)
    idx = table.sample_index(rng, 30, 25)
    a, b = rng.standard_normal(25), rng.standard_normal(25)
    windows = table.rows(idx, 30).astype(np.float64)
    sum_a, sum_b = table.contract(idx, 30, a, b)
    np.testing.assert_allclose(sum_a, a @ windows, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sum_b, b @ windows**2, rtol=1e-12, atol=1e-12)
    assert table.contract(idx, 30, a)[1] is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"size": 0, "seed": 1}, ValueError, "size must be >= 1, got 0"),
        ({"size": 10, "seed": -1}, ValueError, r"seed must be in \[0, 2\*\*32\)"),
        ({"size": 10, "seed": 2**32}, ValueError, r"seed must be in \[0, 2\*\*32\)"),
        ({"size": 10, "seed": 1.5}, TypeError, "seed must be an int, got float"),
        ({"size": 10, "seed": 1, "dtype": np.int32}, ValueError, "dtype must be float32 or float64, got int32"),
    ],
)
def test_table_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        NoiseTable(**kwargs)


def test_table_rejects_bad_windows(table):
    with pytest.raises(ValueError, match="dim must be <= the table size 200000, got 200001"):
        table.get(0, 200_001)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 199990\]"):
        table.rows([199_991], 10)
    with pytest.raises(ValueError, match="indices must be a 1-D integer array"):
        table.rows([0.5], 10)


# --- sharing across processes and clean-up --------------------------------------------------------


def _describe_table(t: NoiseTable) -> tuple[str, float, bool]:
    """Run in a pool worker: how the pickled table got its numbers, and a checksum."""
    arr = t.array
    return repr(t), float(arr.astype(np.float64).sum()), bool(arr.flags.writeable)


@needs_dev_shm
def test_segment_is_unlinked_on_close_and_rebuilt_on_use():
    t = NoiseTable(1000, 2)
    assert t.segment_name is None
    t.array  # noqa: B018
    name = t.segment_name
    assert name is not None and os.path.exists(f"/dev/shm/{name}")
    view = t.get(0, 10)  # a view outliving close() must not keep the name alive
    t.close()
    assert not os.path.exists(f"/dev/shm/{name}") and not t.built
    np.testing.assert_array_equal(view, randn_table(10, 2))
    with t:
        np.testing.assert_array_equal(t.array, randn_table(1000, 2))
        second = t.segment_name
        assert second != name and os.path.exists(f"/dev/shm/{second}")
    assert not os.path.exists(f"/dev/shm/{second}")


@needs_dev_shm
def test_segment_is_unlinked_when_the_table_is_collected():
    t = NoiseTable(1000, 2)
    t.array  # noqa: B018
    name = t.segment_name
    del t
    gc.collect()
    assert not os.path.exists(f"/dev/shm/{name}")


def _start_owner(extra: str) -> tuple[subprocess.Popen, str]:
    """A process that builds a shared table, prints its segment's name, then runs ``extra``."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from npevograd.noise import NoiseTable
        t = NoiseTable(100_000, 9)
        t.array
        print(t.segment_name, flush=True)
        {extra}
        """
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)


@needs_dev_shm
def test_segment_is_unlinked_when_the_owner_exits_or_is_killed():
    exiting, killed = _start_owner(""), _start_owner("time.sleep(60)")
    exit_name, killed_name = exiting.stdout.readline().strip(), killed.stdout.readline().strip()
    assert exit_name.startswith(noise_module.SEGMENT_PREFIX) and killed_name.startswith(noise_module.SEGMENT_PREFIX)
    assert os.path.exists(f"/dev/shm/{killed_name}")
    killed.send_signal(signal.SIGKILL)
    assert exiting.wait(timeout=30) == 0 and killed.wait(timeout=30) == -signal.SIGKILL
    assert not os.path.exists(f"/dev/shm/{exit_name}")  # unlinked by the owner at exit
    deadline = time.monotonic() + 15  # unlinked by the resource tracker once it sees its owner gone
    while os.path.exists(f"/dev/shm/{killed_name}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/dev/shm/{killed_name}")
    exiting.stdout.close()
    killed.stdout.close()


def test_pickle_carries_no_numbers_and_unpickles_to_the_live_table():
    t = NoiseTable(100_000, 21)
    t.array  # noqa: B018
    blob = pickle.dumps(t)
    assert len(blob) < 300
    assert pickle.loads(blob) is t
    t.close()


@needs_dev_shm
def test_other_processes_attach_read_only_and_leave_the_segment_alone():
    t = NoiseTable(300_000, 13)
    expected_sum = float(t.array.astype(np.float64).sum())
    name = t.segment_name
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        reports = list(pool.map(_describe_table, [t] * 4))
    for text, checksum, writeable in reports:
        assert "attached" in text  # mapped the owner's segment, built nothing
        assert checksum == expected_sum and not writeable
    # the workers have exited; only the owner may unlink, so the segment is still there
    assert os.path.exists(f"/dev/shm/{name}")
    t.close()
    assert not os.path.exists(f"/dev/shm/{name}")


def test_a_missing_or_foreign_segment_is_not_trusted():
    other = NoiseTable(50_000, 31)
    other.array  # noqa: B018
    try:
        # a pickle naming another table's segment (same size, other seed): rebuilt from the seed
        restored = noise_module._restore(50_000, 32, "<f4", other.segment_name)
        np.testing.assert_array_equal(restored.array, randn_table(50_000, 32))
        assert "private" in repr(restored)
        gone = noise_module._restore(60_000, 33, "<f4", "npeg_doesnotexist")
        np.testing.assert_array_equal(gone.array, randn_table(60_000, 33))
    finally:
        noise_module._RECEIVED.clear()
        other.close()


def test_received_tables_are_bounded_and_dropped_once_their_owner_closes_them():
    noise_module._RECEIVED.clear()
    owners = [NoiseTable(20_000, 40 + k) for k in range(2)]
    try:
        names = [o.array is not None and o.segment_name for o in owners]
        for o in owners:  # as in a worker: the owners live in another process
            del noise_module._LIVE[o._key]
        received = [noise_module._restore(20_000, 40 + k, "<f4", names[k]) for k in range(2)]
        for k, t in enumerate(received):
            np.testing.assert_array_equal(t.array, owners[k].array)
            assert "attached" in repr(t)
        owners[0].close()  # its owner is done with it: the next arrival drops it, the open one stays
        later = [noise_module._restore(30_000, 49, "<f4", None)]
        assert list(noise_module._RECEIVED) == [(20_000, 41, "<f4"), (30_000, 49, "<f4")]
        later += [noise_module._restore(30_000, 50 + k, "<f4", None) for k in range(noise_module._RECEIVED_MAX)]
        keys = list(noise_module._RECEIVED)
        assert len(keys) == noise_module._RECEIVED_MAX  # bounded: the most recent kept, oldest first
        assert keys == [(30_000, 50 + k, "<f4") for k in range(noise_module._RECEIVED_MAX)]
        del later
        # a task still holding a dropped table can use it
        np.testing.assert_array_equal(received[0].array, randn_table(20_000, 40))
    finally:
        noise_module._RECEIVED.clear()
        for o in owners:
            o.close()


# --- EvoGrad's samples, bit for bit ---------------------------------------------------------------


def evograd_style_samples(mu, sigma, n, seed, paired):
    """EvoGrad's Normal/PairedNormal sampling written out in NumPy: one randint per sample."""
    table = randn_table(10_000_000, 42)
    rs = np.random.RandomState(seed)
    d = mu.shape[0]
    count = n // 2 if paired else n
    idx = [rs.randint(0, len(table) - d + 1) for _ in range(count)]
    pairs = [(i, 1) for i in idx] + ([(i, -1) for i in idx] if paired else [])
    return np.stack([mu + np.float32(s) * np.float32(sigma) * table[i : i + d] for i, s in pairs])


@pytest.fixture(scope="module")
def evograd_table() -> NoiseTable:
    t = NoiseTable.evograd()
    yield t
    t.close()


@pytest.mark.parametrize("paired", [False, True], ids=["Normal", "PairedNormal"])
def test_evograd_preset_reproduces_evograd_sampling(evograd_table, paired):
    assert (evograd_table.size, evograd_table.seed, evograd_table.dtype) == (10_000_000, 42, np.float32)
    mu = np.linspace(-1, 2, 6).astype(np.float32)
    cls = ng.PairedNormal if paired else ng.Normal
    ours = cls(mu, 0.3, noise=evograd_table).sample(40, np.random.RandomState(7))
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, evograd_style_samples(mu, 0.3, 40, 7, paired))


@pytest.mark.parametrize("d", [1, 5, 100])
@pytest.mark.parametrize("diagonal", [False, True], ids=["isotropic", "diagonal"])
def test_samples_are_evograds_bit_for_bit(evograd_table, d, diagonal):
    torch = pytest.importorskip("torch")
    distributions = pytest.importorskip("evograd.distributions")
    evograd_noise = pytest.importorskip("evograd.noise").noise
    np.testing.assert_array_equal(evograd_table.array, evograd_noise.noise)
    mu = np.random.default_rng(d).standard_normal(d).astype(np.float32)
    sigma = np.linspace(0.1, 1.7, d).astype(np.float32) if diagonal else 0.37
    torch_sigma = torch.tensor(sigma) if diagonal else sigma
    for theirs_cls, ours_cls in [
        (distributions.Normal, ng.Normal),
        (distributions.PairedNormal, ng.PairedNormal),
    ]:
        theirs = theirs_cls(torch.tensor(mu), torch_sigma, random_state=np.random.RandomState(123))
        ours = ours_cls(mu, sigma, noise=evograd_table)
        np.testing.assert_array_equal(ours.sample(30, np.random.RandomState(123)), theirs.sample(30).numpy())
        descriptors = theirs_cls(torch.tensor(mu), torch_sigma, random_state=np.random.RandomState(5)).sample(
            30, encode=True
        )
        encoded = ours.sample(30, np.random.RandomState(5), encode=True)
        np.testing.assert_array_equal(encoded.indices, [i for i, _ in descriptors])
        np.testing.assert_array_equal(encoded.signs, [s for _, s in descriptors])


# --- encoded samples ------------------------------------------------------------------------------


NORMALS = {
    "iso": lambda dt, t: ng.Normal(np.linspace(-1, 1, 40).astype(dt), 0.7, noise=t),
    "iso-learn": lambda dt, t: ng.Normal(np.linspace(-1, 1, 40).astype(dt), 0.7, learn_sigma=True, noise=t),
    "diag-learn": lambda dt, t: ng.Normal(
        np.linspace(-1, 1, 40).astype(dt), np.linspace(0.2, 2.0, 40), learn_sigma=True, noise=t
    ),
    "paired-iso-learn": lambda dt, t: ng.PairedNormal(
        np.linspace(-1, 1, 40).astype(dt), 1.3, learn_sigma=True, noise=t
    ),
    "paired-diag": lambda dt, t: ng.PairedNormal(np.linspace(-1, 1, 40).astype(dt), np.linspace(0.2, 2.0, 40), noise=t),
}


@pytest.fixture(params=sorted(NORMALS))
def normal_with_table(request, table, dtype):
    return NORMALS[request.param](dtype, table)


def test_encoded_form_holds_arrays_and_decodes_to_the_plain_sample(normal_with_table):
    p = normal_with_table
    encoded = p.sample(30, 42, encode=True)
    assert isinstance(encoded, EncodedSamples)
    assert encoded.indices.dtype == np.int64 and encoded.signs.dtype == np.int8
    assert encoded.shape == (30, 40) and len(encoded) == 30
    assert not encoded.indices.flags.writeable
    x = p.decode(encoded)
    assert x.dtype == p.dtype and x.shape == (30, 40)
    np.testing.assert_array_equal(x, p.sample(30, 42))  # the unencoded draw is the same draw
    windows = p.noise.rows(encoded.indices, 40).astype(p.dtype)
    expected = p.mu + (encoded.signs[:, None] * p.sigma).astype(p.dtype) * windows
    np.testing.assert_array_equal(x, expected)
    half = encoded[:15]
    assert isinstance(half, EncodedSamples) and half.shape == (15, 40)
    np.testing.assert_array_equal(p.decode(half), x[:15])


def test_paired_encoding_mirrors_the_first_half(table):
    encoded = ng.PairedNormal(np.zeros(3), 1.0, noise=table).sample(8, 0, encode=True)
    np.testing.assert_array_equal(encoded.indices[:4], encoded.indices[4:])
    np.testing.assert_array_equal(encoded.signs, [1, 1, 1, 1, -1, -1, -1, -1])


def test_weighted_score_on_encoded_equals_decoded(normal_with_table, monkeypatch):
    monkeypatch.setattr(_blocks, "BLOCK_BYTES", 100 * 4)  # several blocks of 1 or 2 windows
    p = normal_with_table
    encoded = p.sample(24, 3, encode=True)
    w = np.random.default_rng(9).standard_normal(24).astype(p.dtype)
    ours = p.weighted_score(w, encoded)
    reference = p.weighted_score(w, p.decode(encoded))
    rtol = 1e-4 if p.dtype == np.float32 else 1e-11
    assert set(ours) == set(reference)
    for name in ours:
        assert ours[name].dtype == p.dtype and ours[name].shape == p.params[name].shape
        scale = np.abs(reference[name]).max()
        np.testing.assert_allclose(ours[name], reference[name], rtol=rtol, atol=rtol * scale)


def test_log_prob_and_score_accept_encoded(normal_with_table):
    p = normal_with_table
    encoded = p.sample(10, 5, encode=True)
    x = p.decode(encoded)
    np.testing.assert_array_equal(p.log_prob(encoded), p.log_prob(x))
    for name, s in p.score(encoded).items():
        np.testing.assert_array_equal(s, p.score(x)[name])


@pytest.mark.parametrize(
    "estimator",
    [ng.Mean(), ng.Mean(shaping=ng.centered_ranks), ng.Variance(), ng.Entropy(bandwidth=0.7), ng.expectation],
    ids=["mean", "mean-ranks", "variance", "entropy", "expectation"],
)
def test_estimators_accept_encoded(normal_with_table, estimator):
    p = normal_with_table
    encoded = p.sample(20, 8, encode=True)
    x = p.decode(encoded)
    values = np.random.default_rng(2).standard_normal((20, 2)).astype(p.dtype)
    if not isinstance(estimator, (ng.Variance, ng.Entropy)):  # fitness (n,); behaviours (n, 2)
        values = values[:, 0]
    ours, reference = estimator(values, encoded, p), estimator(values, x, p)
    np.testing.assert_array_equal(ours.weights, reference.weights)
    assert ours.value == reference.value
    rtol = 1e-4 if p.dtype == np.float32 else 1e-11
    for name in reference.grad:
        scale = np.abs(reference.grad[name]).max()
        np.testing.assert_allclose(ours.grad[name], reference.grad[name], rtol=rtol, atol=rtol * scale)


def test_expectation_of_several_outputs_accepts_encoded(table):
    p = ng.Normal(np.zeros(4), 0.5, learn_sigma=True, noise=table)
    encoded = p.sample(12, 1, encode=True)
    values = np.random.default_rng(0).standard_normal((12, 3))
    ours, reference = ng.expectation(values, encoded, p), ng.expectation(values, p.decode(encoded), p)
    for name in reference.grad:
        assert ours.grad[name].shape == (3, *p.params[name].shape)
        np.testing.assert_allclose(ours.grad[name], reference.grad[name], rtol=1e-12)


def test_encoded_weighted_score_never_builds_the_sample_matrix(monkeypatch):
    from npevograd.sampling import BLOCK_BYTES

    monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", "2")  # a block of windows per thread at a time
    n, d = 200, 50_000
    t = NoiseTable(1_000_000, 4, shared=False)
    p = ng.Normal(np.zeros(d, dtype=np.float32), 0.1, learn_sigma=True, noise=t)
    encoded = p.sample(n, 0, encode=True)
    w = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    t.array  # noqa: B018
    tracemalloc.start()
    p.weighted_score(w, encoded)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    budget = 2 * BLOCK_BYTES + 6 * 2 * d * 4 + 2**20  # a block per thread, the sums of the groups in flight
    assert peak < budget < n * d * 4 / 3, f"peak {peak} bytes vs sample matrix {n * d * 4}"


def test_encoded_mean_gradient_is_unbiased(table):
    """f(x) = -||x - a||^2 under N(mu, sigma^2 I): dE/dmu = -2 (mu - a), within 4 standard errors."""
    mu, a, sigma, n = np.array([0.5, -1.0, 2.0]), np.array([1.0, 1.0, 1.0]), 0.8, 20_000
    p = ng.PairedNormal(mu, sigma, noise=table)
    encoded = p.sample(n, 2024, encode=True)
    x = p.decode(encoded)
    f = -np.sum((x - a) ** 2, axis=1)
    grad = ng.Mean()(f, encoded, p).grad["mu"]
    per_pair = (f[: n // 2, None] - f[n // 2 :, None]) * (x[: n // 2] - mu) / sigma**2 / 2  # iid terms
    stderr = per_pair.std(axis=0, ddof=1) / np.sqrt(n // 2)
    assert np.all(np.abs(grad - (-2 * (mu - a))) < 4 * stderr)


def test_encoded_sampling_errors(table):
    with pytest.raises(ValueError, match=r"encode=True needs a noise table: build the distribution with Normal"):
        ng.Normal(np.zeros(2), 1.0).sample(4, 0, encode=True)
    with pytest.raises(ValueError, match="n must be even for PairedNormal"):
        ng.PairedNormal(np.zeros(2), 1.0, noise=table).sample(5, 0, encode=True)
    with pytest.raises(TypeError, match="noise must be a NoiseTable or None, got str"):
        ng.Normal(np.zeros(2), 1.0, noise="table")
    with pytest.raises(ValueError, match="noise table has 10 entries, fewer than the dimension d=20"):
        ng.Normal(np.zeros(20), 1.0, noise=NoiseTable(10, 0))
    encoded = ng.Normal(np.zeros(3), 1.0, noise=table).sample(4, 0, encode=True)
    with pytest.raises(ValueError, match="x encodes samples of dimension 3, expected 2"):
        ng.Normal(np.zeros(2), 1.0, noise=table).weighted_score(np.ones(4), encoded)
    with pytest.raises(ValueError, match=r"w has shape \(3,\) but x has 4 samples"):
        ng.Normal(np.zeros(3), 1.0).weighted_score(np.ones(3), encoded)
    with pytest.raises(TypeError, match="encoded must be EncodedSamples, got ndarray"):
        ng.Normal(np.zeros(3), 1.0).decode(np.zeros((2, 3)))


def test_encoded_samples_validation(table):
    with pytest.raises(ValueError, match="signs must all be"):
        EncodedSamples(np.array([0, 1]), np.array([1, 0]), 3, table)
    with pytest.raises(ValueError, match=r"signs has shape \(1,\) but indices has \(2,\)"):
        EncodedSamples(np.array([0, 1]), np.array([1]), 3, table)
    with pytest.raises(TypeError, match="table must be a NoiseTable, got ndarray"):
        EncodedSamples(np.array([0]), np.array([1]), 3, np.zeros(5))
    with pytest.raises(TypeError, match="indexed by slices only"):
        EncodedSamples(np.array([0]), np.array([1]), 3, table)[0]
