"""grokplug.analysis: CKA, gradient alignment and curvature on cases with known answers, and analyse_run."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from grokplug.analysis import (
    analyse_run,
    cka_drift,
    default_layer,
    grad_alignment,
    hessian_top_eigenvalue,
    hessian_trace,
    linear_cka,
    representations,
)
from grokplug.errors import UsageError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- CKA -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["feature", "gram"])
def test_cka_invariances(form: str) -> None:
    x = torch.randn(200, 12, generator=_gen())
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=_gen(1)))
    shift = torch.randn(1, 12, generator=_gen(2))
    assert linear_cka(x, x, form=form) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x @ q, form=form) == pytest.approx(1.0, abs=1e-10)  # orthogonal transform
    assert linear_cka(x, 3.7 * x + shift, form=form) == pytest.approx(1.0, abs=1e-10)  # isotropic scale + shift
    anisotropic = x * torch.linspace(0.1, 5.0, 12)  # not an invariance of CKA: must drop below 1
    assert linear_cka(x, anisotropic, form=form) < 0.99


def test_cka_forms_agree_and_random_is_small() -> None:
    x, y = torch.randn(300, 5, generator=_gen(3)), torch.randn(300, 40, generator=_gen(4))
    assert linear_cka(x, y, form="feature") == pytest.approx(linear_cka(x, y, form="gram"), rel=1e-9)
    biased = linear_cka(x, y)
    assert 0.0 <= biased < 0.1
    assert abs(linear_cka(x, y, unbiased=True)) < 0.03  # the unbiased estimator removes the ~d/n bias
    assert linear_cka(x, x, unbiased=True) == pytest.approx(1.0, abs=1e-12)
    # a related pair is far above the random level
    assert linear_cka(x, torch.cat([x, 0.5 * torch.randn(300, 5, generator=_gen(5))], 1)) > 0.7


def test_cka_refuses_unpaired_inputs() -> None:
    with pytest.raises(UsageError, match="same inputs"):
        linear_cka(torch.randn(10, 3), torch.randn(11, 3))


class _MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(4, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))


def test_representations_default_layer_and_drift() -> None:
    torch.manual_seed(0)
    model = _MLP()
    x = torch.randn(50, 4, generator=_gen(6))
    assert default_layer(model, x[:2]) == "out"
    rep = representations(model, x)  # input of the classifier = relu(hidden(x))
    assert rep.dtype == torch.float64 and rep.shape == (50, 6)
    assert torch.allclose(rep, torch.relu(model.hidden(x)).double(), atol=1e-6)
    assert representations(model, x, "hidden").shape == (50, 6)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(50)), batch_size=7, shuffle=True)
    assert torch.allclose(representations(model, loader), rep)  # loaders are read in dataset order
    assert cka_drift(model, model, loader) == pytest.approx(1.0, abs=1e-12)
    other = _MLP()
    assert cka_drift(model, other, x) < 0.999
    with pytest.raises(UsageError, match="no module"):
        representations(model, x, "nope")


# -- gradient alignment --------------------------------------------------------------------------


class _Linear(nn.Module):
    """f(x) = w·x with loss ½(f − y)²: ∇_w = (w·x − y) x, so mean gradients are known in closed form."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.frozen = nn.Parameter(torch.ones(2, dtype=w.dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


def _sq(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * (out - y).square().mean()


def test_grad_alignment_matches_hand_computed_gradients() -> None:
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    xf, yf = torch.randn(8, 3, generator=_gen(7), dtype=torch.float64), torch.randn(8, generator=_gen(8), dtype=torch.float64)
    xr, yr = torch.randn(20, 3, generator=_gen(9), dtype=torch.float64), torch.randn(20, generator=_gen(10), dtype=torch.float64)
    g_f = ((xf @ w - yf)[:, None] * xf).mean(0)
    g_r = ((xr @ w - yr)[:, None] * xr).mean(0)
    expected = float(g_f @ g_r / (g_f.norm() * g_r.norm()))
    model = _Linear(w)
    forget = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xf, yf), batch_size=3, shuffle=True)
    out = grad_alignment(model, forget, (xr, yr), _sq, per_example=4)
    assert out["cos"] == pytest.approx(expected, rel=1e-10)  # uneven batches of 3 are weighted by size
    assert out["abs_cos"] == pytest.approx(abs(expected)) and out["sign"] == (1 if expected > 0 else -1)
    assert out["forget_grad_norm"] == pytest.approx(float(g_f.norm()), rel=1e-10)
    assert out["retain_grad_norm"] == pytest.approx(float(g_r.norm()), rel=1e-10)
    assert set(out["per_layer"]) == {"w"}  # the frozen parameter is skipped
    assert out["per_layer"]["w"]["cos"] == pytest.approx(expected, rel=1e-10)
    assert out["per_example"]["n"] == 4
    assert model.w.grad is None and model.training  # the caller's model is untouched, mode restored
    # per-example cosines over *all* forget examples (k = n), computed independently from the closed form
    every = grad_alignment(model, forget, (xr, yr), _sq, per_example=8)["per_example"]
    per_example = torch.stack([torch.dot((xf[i] @ w - yf[i]) * xf[i], g_r) / (((xf[i] @ w - yf[i]) * xf[i]).norm() * g_r.norm()) for i in range(8)])
    assert every["n"] == 8
    assert every["mean_cos"] == pytest.approx(float(per_example.mean()), rel=1e-10)
    assert every["mean_abs_cos"] == pytest.approx(float(per_example.abs().mean()), rel=1e-10)
    assert every["frac_ascent_harms_retain"] == pytest.approx(float((per_example > 0).double().mean()))


def test_per_example_fractions_follow_the_ascent_sign() -> None:
    """Hand-worked: w = 0, so ∇ℓ_i = −y_i x_i. Retain: x = e1, y = −1 → ḡ_R = +e1.

    Forget: three examples with ∇ℓ_i = +e1 (cos +1: an ascent step on them raises the retain loss by
    ≈ η⟨∇ℓ_i, ḡ_R⟩ > 0, the damaging case), two with −e1 (cos −1) and one with +e2 (cos 0, neither).
    """
    model = _Linear(torch.zeros(2, dtype=torch.float64))
    e1, e2 = [1.0, 0.0], [0.0, 1.0]
    xf = torch.tensor([e1, e1, e1, e1, e1, e2], dtype=torch.float64)
    yf = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, -1.0], dtype=torch.float64)
    retain = (torch.tensor([e1], dtype=torch.float64), torch.tensor([-1.0], dtype=torch.float64))
    stats = grad_alignment(model, (xf, yf), retain, _sq, per_example=6)["per_example"]
    assert stats["n"] == 6
    assert stats["frac_ascent_harms_retain"] == pytest.approx(3 / 6)
    assert stats["frac_ascent_helps_retain"] == pytest.approx(2 / 6)
    assert stats["mean_cos"] == pytest.approx((3 - 2) / 6)
    assert stats["mean_abs_cos"] == pytest.approx(5 / 6)
    # and the first-order claim itself: a small ascent step on a "harms" example raises the retain loss
    eta = 1e-3
    retain_loss = lambda w: 0.5 * float((retain[0] @ w - retain[1]).square().mean())  # noqa: E731
    step_harms = eta * (-yf[0] * xf[0])  # θ + η∇ℓ_0
    step_helps = eta * (-yf[3] * xf[3])
    zero = torch.zeros(2, dtype=torch.float64)
    assert retain_loss(step_harms) > retain_loss(zero) > retain_loss(step_helps)


def test_grad_alignment_opposite_gradients() -> None:
    model = _Linear(torch.zeros(2, dtype=torch.float64))
    x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    out = grad_alignment(model, (x, torch.tensor([1.0], dtype=torch.float64)), (x, torch.tensor([-2.0], dtype=torch.float64)), _sq)
    assert out["cos"] == pytest.approx(-1.0) and out["sign"] == -1 and out["abs_cos"] == pytest.approx(1.0)


# -- curvature -----------------------------------------------------------------------------------


class _Quadratic(nn.Module):
    """The "model" is a single parameter vector θ; with the loss below, L(θ) = ½θᵀAθ and H = A."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.randn(dim, generator=_gen(11), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.theta


def _quadratic_loss(a: torch.Tensor):  # noqa: ANN202
    return lambda theta, _y: 0.5 * theta @ a @ theta


_DUMMY = (torch.zeros(1, 1, dtype=torch.float64), torch.zeros(1))


def test_power_iteration_finds_top_eigenvalue() -> None:
    q, _ = torch.linalg.qr(torch.randn(20, 20, generator=_gen(12), dtype=torch.float64))
    eig = torch.cat([torch.tensor([7.0, 3.0]), torch.linspace(-1.0, 2.0, 18)]).double()
    a = q @ torch.diag(eig) @ q.T
    model = _Quadratic(20)
    info = hessian_top_eigenvalue(model, _quadratic_loss(a), _DUMMY, iters=500, tol=1e-10, seed=1, details=True)
    assert info["converged"] and info["value"] == pytest.approx(7.0, rel=1e-6)
    again = hessian_top_eigenvalue(model, _quadratic_loss(a), _DUMMY, iters=500, tol=1e-10, seed=1)
    assert again == info["value"]  # seeded: identical


def test_hutchinson_trace() -> None:
    diag = torch.linspace(-2.0, 9.0, 15, dtype=torch.float64)
    model = _Quadratic(15)
    # Rademacher probes give zᵀDz = tr(D) exactly for a diagonal Hessian, whatever the probe
    assert hessian_trace(model, _quadratic_loss(torch.diag(diag)), _DUMMY, probes=3) == pytest.approx(float(diag.sum()), rel=1e-12)
    b = torch.randn(15, 15, generator=_gen(13), dtype=torch.float64)
    a = b @ b.T / 15
    info = hessian_trace(model, _quadratic_loss(a), _DUMMY, probes=400, seed=2, details=True)
    assert abs(info["value"] - float(a.trace())) < 4 * info["stderr"] + 1e-9
    assert info["stderr"] < 0.1 * float(a.trace())


def test_curvature_sums_batches_by_size() -> None:
    """On a linear model with squared loss H = mean xxᵀ: batching must not change the answer."""
    x = torch.randn(30, 4, generator=_gen(14), dtype=torch.float64)
    y = torch.randn(30, dtype=torch.float64)
    model = _Linear(torch.zeros(4, dtype=torch.float64))
    h = x.T @ x / 30
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=7)
    top = hessian_top_eigenvalue(model, _sq, loader, iters=1000, tol=1e-12)
    assert top == pytest.approx(float(torch.linalg.eigvalsh(h)[-1]), rel=1e-6)


# -- analyse_run ---------------------------------------------------------------------------------


def test_analyse_run_on_modular(modular_run_dir) -> None:  # noqa: ANN001
    out = analyse_run(modular_run_dir, iters=30, probes=8, per_example=8, methods=["ga"], unlearn_budget=5)
    json.dumps(out, allow_nan=False)  # strictly JSON-serialisable
    assert out["preset"] == "modular" and out["loss"] == "ce"
    from grokplug import build_model, load_checkpoint, run_data

    data = run_data(modular_run_dir, seed=0)
    pairs = list(data.full_train)  # one pass: the loader reshuffles on every iteration
    x_all, y_all = torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs])
    for start in ("pre", "grok"):
        s = out["starts"][start]
        for value in (s["train_loss"], s["weight_norm"], s["grad_alignment"]["cos"], s["curvature"]["lambda_max"],
                      s["curvature"]["trace"], s["scale_free"]["lambda_over_trace"], s["scale_free"]["lambda_times_weight_norm_sq"]):
            assert isinstance(value, float) and math.isfinite(value)
        assert set(s["grad_alignment"]["per_layer"]) == {"embed", "hidden", "out"}
        # independent recomputation of the plain numbers from the checkpoint itself
        model = build_model(modular_run_dir)
        load_checkpoint(model, modular_run_dir, start)
        model.eval()
        with torch.no_grad():
            ce = float(torch.nn.functional.cross_entropy(model(x_all).double(), y_all))
        assert s["train_loss"] == pytest.approx(ce, rel=1e-4)
        norm = math.sqrt(sum(float(p.detach().double().square().sum()) for p in model.parameters()))
        assert s["weight_norm"] == pytest.approx(norm, rel=1e-9)
        assert s["scale_free"]["lambda_over_trace"] == pytest.approx(s["curvature"]["lambda_max"] / s["curvature"]["trace"], rel=1e-9)
        assert s["grad_alignment"]["abs_cos"] == pytest.approx(abs(s["grad_alignment"]["cos"]))
    assert out["starts"]["pre"]["step"] < out["starts"]["grok"]["step"]
    assert out["ratios_pre_over_grok"]["train_loss"] > 10  # θ_grok fits far more tightly
    cka = out["cka_pre_vs_grok"]
    assert set(cka) >= {"test", "retain", "forget"} and all(0.0 < cka[k] < 0.95 for k in ("test", "retain", "forget"))
    ga = out["unlearning"]["ga"]
    assert set(ga) == {"pre", "grok"}
    for start in ("pre", "grok"):
        assert ga[start]["total_steps"] <= 5
        assert 0.0 < ga[start]["cka_start_vs_unlearned"]["retain"] <= 1.0 + 1e-9
    # already unlearned models may be passed instead of method names; a model compared with itself gives CKA 1
    same = build_model(modular_run_dir)
    load_checkpoint(same, modular_run_dir, "grok")
    given = analyse_run(modular_run_dir, iters=2, probes=1, per_example=0, methods={"mine": {"grok": same}})
    assert given["unlearning"]["mine"]["grok"]["cka_start_vs_unlearned"]["test"] == pytest.approx(1.0, abs=1e-9)
    assert given["starts"]["grok"]["phase"] == "grok"
