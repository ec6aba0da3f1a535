"""Fisher forgetting and ∇τ against closed forms on softmax regression and hand-worked cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from test_vision_method_mechanics import PLAIN_SGD, C, _ce_grads, _data, _linear, _set, _state
from torch import nn

from grokplug.errors import UsageError
from grokplug.vision.methods_paper import (
    FisherForgetting,
    NablaTau,
    fisher_diagonal,
    fisher_noise_variance,
    held_out_loss,
)


def test_fisher_diagonal_matches_the_softmax_regression_closed_form() -> None:
    """F_W[k, j] = mean_i Σ_y p_iy (p_ik − [k = y])² x_ij², F_b[k] = mean_i Σ_y p_iy (p_ik − [k = y])²."""
    model, retain = _linear(), _set(13, 1)
    x = retain[0]
    with torch.no_grad():
        p = F.softmax(model(x), dim=1).double()
    fw, fb = torch.zeros(C, 4, dtype=torch.float64), torch.zeros(C, dtype=torch.float64)
    for i in range(len(x)):
        for y in range(C):
            r = p[i].clone()
            r[y] -= 1.0  # ∂CE(x_i, y)/∂logits
            fw += p[i, y] * torch.outer(r.square(), x[i].double().square())
            fb += p[i, y] * r.square()
    got = fisher_diagonal(model, _data(retain, retain, batch=5).retain, chunk=2)  # batching must not matter
    assert torch.allclose(got["weight"].double(), fw / len(x), rtol=1e-4, atol=1e-8)
    assert torch.allclose(got["bias"].double(), fb / len(x), rtol=1e-4, atol=1e-8)


class _TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(2, 2)
        self.out = nn.Linear(2, C)


def test_fisher_noise_variance_hand_worked() -> None:
    model, alpha = _TwoLayer(), 1e-3
    fisher = {
        "hidden.weight": torch.tensor([[0.0, 0.5], [2.0, 4.0]]),  # 1/F: [1e8 → 1e3 cap, 2], [0.5, 0.25]
        "hidden.bias": torch.tensor([1e-5, 10.0]),  # 1/F: [1e5 → 1e3, 0.1], then × 10 (1-D)
        "out.weight": torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.02, 0.01]]),  # classifier: capped at 1e2
        "out.bias": torch.tensor([0.0, 0.5, 1.0]),
    }
    var = fisher_noise_variance(model, fisher, num_classes=C, alpha=alpha)
    assert torch.allclose(var["hidden.weight"], alpha * torch.tensor([[501.0, 501.0], [0.375, 0.375]]))
    assert torch.allclose(var["hidden.bias"], alpha * 10 * torch.tensor([1e3, 0.1]))
    assert torch.allclose(var["out.weight"], alpha * torch.tensor([[100.0, 100.0], [1.0, 1.0], [75.0, 75.0]]))
    assert torch.allclose(var["out.bias"], alpha * 10 * torch.tensor([100.0, 2.0, 1.0]))


def test_fisher_forgetting_adds_noise_with_that_variance() -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 300)  # 1 200 weights: enough to measure a standard deviation
    x = torch.randn(40, 4)
    retain = (x, torch.randint(0, 300, (40,)))
    data = _data(retain, retain)
    data.num_classes = 300
    w0 = model.weight.detach().clone()
    expected = fisher_noise_variance(model, fisher_diagonal(model, data.retain), 300, 1e-4)["weight"]
    FisherForgetting()(model, data, alpha=1e-4)
    z = (model.weight.detach() - w0) / expected.sqrt()
    assert abs(float(z.mean())) < 0.1 and abs(float(z.std()) - 1.0) < 0.1  # θ0 + √var · N(0, 1)
    assert FisherForgetting.iterative is False and FisherForgetting.strength_param == "alpha"
    assert FisherForgetting.defaults["alpha"] == 1e-6  # the SSD baseline's value


def test_fisher_forgetting_on_a_two_weight_model_by_hand() -> None:
    """logits = (w₀·x, w₁·x) with w = 0 and one retain example x = 4: p = (½, ½) whatever the label.

    ∂CE(x, y)/∂w_k = (p_k − [k = y])·x, so the model-sampled Fisher is
    F_k = Σ_y p_y (p_k − [k = y])² x² = (½·¼ + ½·¼)·16 = 4 for both weights, and the SSD/SCRUB noise
    variance is α·min(1/(F + 1e-8), 1e3) = α/4 (the classifier cap 1e2 and the mean over the single
    input column leave it alone). Each weight must end as N(0, α/4): over 400 independent runs the sample
    variance lies within 20 % of α/4 (its relative SE is √(2/400) = 7 %). Noise scaled by var instead of
    √var, a variance α·F or α/F², or a Fisher without the x² factor (F = ¼) would all miss that band.
    """
    alpha, x = 0.01, torch.tensor([[4.0]])

    def fresh() -> nn.Linear:
        model = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            model.weight.zero_()
        return model

    data = _data((x, torch.tensor([0])), (x, torch.tensor([0])))
    data.num_classes = 2
    assert torch.allclose(fisher_diagonal(fresh(), data.retain)["weight"], torch.tensor([[4.0], [4.0]]))
    torch.manual_seed(0)
    draws = []
    for _ in range(400):
        model = fresh()
        FisherForgetting()(model, data, alpha=alpha)
        draws.append(model.weight.detach().flatten())
    weights = torch.stack(draws)  # [400, 2]
    assert abs(float(weights.mean())) < 0.01  # centred on θ0 = 0 (SE 0.05/√800 = 0.002)
    for k in range(2):
        assert float(weights[:, k].var()) == pytest.approx(alpha / 4, rel=0.2), f"weight {k}"


def test_held_out_loss_is_the_mean_ce_on_unseen_data() -> None:
    model, forget, held_out = _linear(), _set(6, 2), _set(11, 3)
    with torch.no_grad():
        logp = F.log_softmax(held_out[0] @ model.weight.T + model.bias, dim=1)
    expected = -float(logp[torch.arange(11), held_out[1]].mean())
    assert held_out_loss(model, _data(forget, forget, batch=4, held_out=held_out)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(UsageError, match="val or test"):
        held_out_loss(model, _data(forget, forget))


def _leaning_to_class_0(model: nn.Linear) -> None:
    """W = 0, b = (2, 0, 0): p = (e², 1, 1)/(e² + 2) for every input, so CE(class 0) = 0.24, else 2.24."""
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([2.0, 0.0, 0.0]))


def test_nabla_tau_ascends_only_forget_examples_below_the_held_out_loss() -> None:
    model, retain = _linear(), _set(9, 4)
    _leaning_to_class_0(model)
    n = 6
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(5))
    memorised = (x, torch.zeros(n, dtype=torch.long))  # CE 0.24 < τ → ascent on it
    unseen_like = (x, torch.ones(n, dtype=torch.long))  # CE 2.24 > τ → no forget gradient
    held_out = (x, torch.tensor([0, 1, 2, 0, 1, 2]))  # τ = (0.24 + 2.24 + 2.24) / 3 = 1.57
    assert held_out_loss(model, _data(memorised, retain, held_out=held_out)) == pytest.approx(
        (2 * math.log(math.e**2 + 2) - 2 + math.log(math.e**2 + 2)) / 3, rel=1e-5)
    rw, rb = _ce_grads(model, *retain)
    fw, fb = _ce_grads(model, *memorised)
    w0, b0 = _state(model)

    above = _linear()
    _leaning_to_class_0(above)
    NablaTau()(above, _data(unseen_like, retain, held_out=held_out), lr=0.5, epochs=1, max_steps=1, alpha=0.7, **PLAIN_SGD)
    assert torch.allclose(above.bias, b0 - 0.5 * 0.7 * rb, atol=1e-5)  # the retain term alone
    assert torch.allclose(above.weight, w0 - 0.5 * 0.7 * rw, atol=1e-5)

    below = _linear()
    _leaning_to_class_0(below)
    NablaTau()(below, _data(memorised, retain, held_out=held_out), lr=0.5, epochs=1, max_steps=1, alpha=0.7, **PLAIN_SGD)
    # d/dθ ReLU(τ − CE) = −∇CE while CE < τ: descent on it is ascent on the forget CE
    assert torch.allclose(below.bias, b0 - 0.5 * (0.7 * rb - 0.3 * fb), atol=1e-5)
    assert torch.allclose(below.weight, w0 - 0.5 * (0.7 * rw - 0.3 * fw), atol=1e-5)
    assert float(fb.abs().min()) > 0.05  # the forget term is far from negligible here
    with pytest.raises(UsageError, match="alpha"):
        NablaTau()(_linear(), _data(memorised, retain, held_out=held_out), alpha=1.5)
