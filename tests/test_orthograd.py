"""⊥Grad: the built-in gradient transform that removes the component parallel to the weights."""

from __future__ import annotations

import pytest
import torch

from grokplug.hooks import orthograd
from grokplug.plugins import DEFAULT_PLUGINS, GRADIENT_PLUGINS, get_plugin_manager


@pytest.fixture
def enabled():
    orthograd.enable()
    yield orthograd.PROJECTION
    orthograd.disable()


def _model_with_grads(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    model(torch.randn(8, 5)).pow(2).sum().backward()
    return model


def test_it_is_a_builtin_plugin_registered_only_when_enabled(pm):
    assert "grokplug.hooks.orthograd" in GRADIENT_PLUGINS and "grokplug.hooks.orthograd" not in DEFAULT_PLUGINS
    assert pm.get_plugin("grokplug.hooks.orthograd") is None and not pm.has_gradient_transforms()
    orthograd.enable()
    assert pm.get_plugin("grokplug.hooks.orthograd") is orthograd and pm.has_gradient_transforms()
    assert pm.describe()["plugins"][[p["name"] for p in pm.describe()["plugins"]].index("grokplug.hooks.orthograd")]["builtin"]
    orthograd.disable()
    assert pm.get_plugin("grokplug.hooks.orthograd") is None
    model = _model_with_grads()
    before = [p.grad.clone() for p in model.parameters()]
    pm.transform_gradients(model, 0)
    assert all(torch.equal(b, p.grad) for b, p in zip(before, model.parameters(), strict=True))


def test_removes_the_parallel_component_and_keeps_the_norm(pm, enabled):
    model = _model_with_grads()
    before = {n: p.grad.clone() for n, p in model.named_parameters()}
    pm.transform_gradients(model, 0)
    for name, p in model.named_parameters():
        w, g, g0 = p.detach().flatten(), p.grad.flatten(), before[name].flatten()
        assert abs(float(torch.dot(w, g))) < 1e-5 * float(w.norm() * g.norm()), name  # orthogonal to θ
        assert torch.allclose(g.norm(), g0.norm(), rtol=1e-5), name  # rescaled to ‖g‖
        expected = g0 - torch.dot(w, g0) / torch.dot(w, w) * w
        assert torch.allclose(g, expected * (g0.norm() / expected.norm()), atol=1e-6), name
        assert not torch.allclose(g, g0), name  # it did change something


def test_exact_values_without_rescaling(pm):
    orthograd.enable(rescale=False)
    try:
        model = torch.nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            model.weight.copy_(torch.tensor([[1.0, 0.0]]))
        model.weight.grad = torch.tensor([[3.0, 4.0]])
        pm.transform_gradients(model, 0)
        assert model.weight.grad.tolist() == [[0.0, 4.0]]  # the x component was along θ
    finally:
        orthograd.disable()


def test_skips_missing_grads_and_zero_weights(pm, enabled):
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.bias.zero_()
    model.bias.grad = torch.tensor([1.0, -2.0])  # θ = 0: nothing to project out
    model.weight.grad = None  # frozen parameter
    pm.transform_gradients(model, 0)
    assert model.weight.grad is None
    assert model.bias.grad.tolist() == [1.0, -2.0]


def test_non_contiguous_gradient_is_written_back():
    weight = torch.nn.Parameter(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    weight.grad = torch.tensor([[3.0, 0.0], [4.0, 0.0]]).t()  # a transposed, non-contiguous view
    model = torch.nn.Module()
    model.weight = weight
    assert not weight.grad.is_contiguous()
    orthograd.OrthoGrad(rescale=False).apply(model)
    assert weight.grad.tolist() == [[0.0, 4.0], [0.0, 0.0]]


def test_env_var_enables_it(monkeypatch):
    from grokplug.plugins import reset_plugin_manager

    monkeypatch.setenv("GROKPLUG_ORTHOGRAD", "1")
    reset_plugin_manager()
    assert get_plugin_manager().get_plugin("grokplug.hooks.orthograd") is orthograd
    monkeypatch.setenv("GROKPLUG_ORTHOGRAD", "0")
    reset_plugin_manager()
    assert get_plugin_manager().get_plugin("grokplug.hooks.orthograd") is None


def test_tracker_applies_it_before_the_optimizer_step(tmp_path, enabled):
    import grokplug

    model = _model_with_grads(1)
    with grokplug.GrokTracker(tmp_path / "run") as tracker:
        tracker.before_optimizer_step(model, 0)
        tracker.log_eval(0, train_acc=0.0, val_acc=0.0)
    for p in model.parameters():
        assert abs(float(torch.dot(p.detach().flatten(), p.grad.flatten()))) < 1e-5 * float(p.detach().norm() * p.grad.norm())
