"""SGD and Adam: hand-computed ascent steps, torch.optim with maximize=True, in-place updates."""

from __future__ import annotations

import numpy as np
import pytest

import npevograd as ng
from npevograd.optim import SGD, Adam


def test_sgd_plain_step_is_theta_plus_lr_grad():
    p = ng.Normal(np.array([1.0, -2.0]), sigma=0.5)
    opt = SGD(p, lr=0.1)
    opt.step({"mu": np.array([3.0, 4.0])})
    np.testing.assert_allclose(p.params["mu"], [1.3, -1.6], rtol=1e-15)


def test_sgd_momentum_two_hand_steps():
    params = {"w": np.array([0.0, 1.0])}
    opt = SGD(params, lr=0.5, momentum=0.9)
    g1, g2 = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    opt.step({"w": g1})  # v1 = g1 = (1, -2); theta = (0.5, 0)
    np.testing.assert_allclose(params["w"], [0.5, 0.0], rtol=1e-15)
    opt.step({"w": g2})  # v2 = 0.9 v1 + g2 = (1.4, -1.3); theta = (1.2, -0.65)
    np.testing.assert_allclose(params["w"], [1.2, -0.65], rtol=1e-14)


def test_weight_decay_ascends_the_penalised_objective():
    # g = grad - lambda theta = 1 - 0.5 * 2 = 0 and 0 - 0.5 * (-4) = 2
    params = {"w": np.array([2.0, -4.0])}
    SGD(params, lr=0.1, weight_decay=0.5).step({"w": np.array([1.0, 0.0])})
    np.testing.assert_allclose(params["w"], [2.0, -3.8], rtol=1e-15)


def test_adam_first_step_is_lr_times_sign_and_second_step_by_hand():
    params = {"w": np.array([0.0, 0.0, 0.0])}
    opt = Adam(params, lr=0.01)
    g1 = np.array([2.0, -0.001, 0.0])
    opt.step({"w": g1})
    # m1 = 0.1 g, v1 = 0.001 g^2: m_hat = g, v_hat = g^2, step = lr g / (|g| + eps)
    np.testing.assert_allclose(params["w"], 0.01 * g1 / (np.abs(g1) + 1e-8), rtol=1e-15)
    w1 = params["w"].copy()
    g2 = np.array([1.0, 1.0, 1.0])
    opt.step({"w": g2})
    m2 = 0.9 * 0.1 * g1 + 0.1 * g2
    v2 = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    m_hat, v_hat = m2 / (1 - 0.9**2), v2 / (1 - 0.999**2)
    np.testing.assert_allclose(params["w"], w1 + 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8), rtol=1e-14)
    # third coordinate: m_hat = 0.1 / 0.19, v_hat = 0.001 / 0.001999 -> about 0.744 * lr
    assert params["w"][2] == pytest.approx(0.01 * (0.1 / 0.19) / (np.sqrt(0.001 / 0.001999) + 1e-8))


@pytest.mark.parametrize("learn_sigma", [False, True])
def test_updates_are_in_place_including_an_isotropic_sigma(learn_sigma):
    p = ng.Normal(np.array([0.0, 0.0]), sigma=0.5, learn_sigma=learn_sigma)
    arrays = {k: v for k, v in p.params.items()}
    grad = {k: np.ones_like(v) for k, v in p.params.items()}
    for opt in (SGD(p, lr=0.1, momentum=0.5), Adam(p, lr=0.1)):
        opt.step(grad)
    for k, v in p.params.items():
        assert v is arrays[k]
    np.testing.assert_allclose(p.params["mu"], [0.2, 0.2], rtol=1e-6)
    if learn_sigma:
        assert p.params["sigma"].shape == ()
        assert float(p.sigma) == pytest.approx(0.7, rel=1e-6)  # the distribution sees the new sigma
        assert float(np.std(p.sample(20000, rng=0))) == pytest.approx(0.7, rel=0.02)


def test_float32_parameters_stay_float32():
    p = ng.Normal(np.array([1.0, 2.0], dtype=np.float32), sigma=np.ones(2), learn_sigma=True)
    opt = Adam(p, lr=0.1)
    updates = opt.step({"mu": np.ones(2), "sigma": -np.ones(2)})
    assert p.params["mu"].dtype == np.float32 and p.params["sigma"].dtype == np.float32
    assert updates["mu"].dtype == np.float32
    np.testing.assert_allclose(p.params["sigma"], [0.9, 0.9], rtol=1e-6)


def test_maximises_a_concave_objective():
    # J(w) = -||w - a||^2, grad = -2 (w - a): ascent must reach a.
    a = np.array([3.0, -1.0])
    for make in (lambda q: SGD(q, lr=0.1, momentum=0.5), lambda q: Adam(q, lr=0.05)):
        params = {"w": np.zeros(2)}
        opt = make(params)
        for _ in range(2000):
            opt.step({"w": -2 * (params["w"] - a)})
        np.testing.assert_allclose(params["w"], a, atol=1e-3)


@pytest.mark.parametrize("kind", ["sgd", "sgd-momentum-wd", "adam", "adam-wd"])
def test_matches_torch_optim_with_maximize(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    theta0 = {"a": rng.standard_normal(3), "b": np.array(0.7)}
    grads = [{"a": rng.standard_normal(3), "b": np.array(rng.standard_normal())} for _ in range(6)]
    tensors = [torch.tensor(v.copy(), dtype=torch.float64, requires_grad=True) for v in theta0.values()]
    params = {k: v.copy() for k, v in theta0.items()}
    if kind.startswith("sgd"):
        momentum, wd = (0.9, 0.1) if "momentum" in kind else (0.0, 0.0)
        ours = SGD(params, lr=0.05, momentum=momentum, weight_decay=wd)
        ref = torch.optim.SGD(tensors, lr=0.05, momentum=momentum, weight_decay=wd, maximize=True)
    else:
        wd = 0.1 if "wd" in kind else 0.0
        ours = Adam(params, lr=0.05, weight_decay=wd)
        ref = torch.optim.Adam(tensors, lr=0.05, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd, maximize=True)
    for g in grads:
        ours.step(g)
        for t, name in zip(tensors, theta0):
            t.grad = torch.tensor(g[name], dtype=torch.float64)
        ref.step()
    for t, name in zip(tensors, theta0):
        np.testing.assert_allclose(params[name], t.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_bad_gradients_and_hyper_parameters_are_named():
    p = ng.Normal(np.array([0.0, 0.0]), sigma=np.ones(2), learn_sigma=True)
    opt = SGD(p, lr=0.1)
    with pytest.raises(ValueError, match=r"grad must be a dict with keys \['mu', 'sigma'\], got \['mu'\]"):
        opt.step({"mu": np.ones(2)})
    with pytest.raises(ValueError, match=r"grad\['sigma'\] must have shape \(2,\), got \(3,\)"):
        opt.step({"mu": np.ones(2), "sigma": np.ones(3)})
    with pytest.raises(ValueError, match=r"grad\['mu'\] must be finite"):
        opt.step({"mu": np.array([np.nan, 0.0]), "sigma": np.ones(2)})
    np.testing.assert_array_equal(p.params["mu"], [0.0, 0.0])  # nothing applied on a bad step
    plain = SGD({"w": np.zeros(2)}, lr=0.1)
    with pytest.raises(ValueError, match=r"grad must be a dict with keys \['w'\], got \['v'\]"):
        plain.step({"v": np.zeros(2)})
    with pytest.raises(ValueError, match=r"grad\['w'\] must have shape \(2,\), got \(\)"):
        plain.step({"w": 1.0})
    with pytest.raises(ValueError, match=r"lr must be in \(0.0, inf\), got 0"):
        SGD(p, lr=0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0.0, 1.0\), got 1.0"):
        SGD(p, lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match=r"beta2 must be in \[0.0, 1.0\), got -0.1"):
        Adam(p, lr=0.1, beta2=-0.1)
    with pytest.raises(ValueError, match=r"weight_decay must be in \[0.0, inf\), got nan"):
        Adam(p, lr=0.1, weight_decay=float("nan"))
    with pytest.raises(TypeError, match="lr must be a real number, got str"):
        Adam(p, lr="0.1")
    with pytest.raises(TypeError, match="p_or_params must be an npevograd Distribution or a dict"):
        SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match=r"params\['w'\] must be a floating numpy array .* got list"):
        SGD({"w": [0.0, 1.0]}, lr=0.1)
    with pytest.raises(TypeError, match=r"params\['w'\] must be a floating numpy array .* got int64"):
        SGD({"w": np.arange(3)}, lr=0.1)


def test_readme_optimizer_snippet_runs_and_converges():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    blocks = [b for b in blocks if "from npevograd.optim import Adam" in b]
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    np.testing.assert_allclose(namespace["p"].params["mu"], 1.0, atol=0.05)
