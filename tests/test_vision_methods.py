"""The built-in vision methods on the digits preset: they forget, they are registered, they are observable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

import grokplug
from grokplug.errors import UsageError
from grokplug.plugins import GrokplugPluginManager
from grokplug.vision import methods_salun_scrub_ssd
from grokplug.vision.data import VisionData
from grokplug.vision.metrics import accuracy

BUILTIN = ["ft", "ga", "rl", "graddiff", "l1-sparse", "salun", "scrub", "ssd", "fisher", "nabla-tau"]
#: forget accuracy must fall by at least this much (≥ 2 of the ~38 forget images) at the defaults
MIN_DROP = 0.05
#: Fisher forgetting at its reference strength (alpha 1e-6) is too weak for these small models; its
#: effect is checked at a strength where it acts, and its noise law in test_vision_paper_methods.py
STRENGTH_FOR_TEST = {"fisher": {"alpha": 1e-3}}


@pytest.fixture(scope="module")
def digits_run(digits_run_dir: Any) -> dict[str, Any]:
    """The session's digits run (trained once, ~25 s on 2 cores); θ_pre / θ_grok weights kept in memory."""
    run = digits_run_dir
    assert grokplug.detect_phases(run).label == "grokking"
    states = {}
    for phase in ("pre", "grok"):
        model = grokplug.build_model(run)
        grokplug.load_checkpoint(model, run, phase)
        states[phase] = {k: v.clone() for k, v in model.state_dict().items()}
    return {"run": run, "states": states}


def start_model(digits_run: dict[str, Any], phase: str = "grok") -> torch.nn.Module:
    model = grokplug.build_model(Path(digits_run["run"]))
    model.load_state_dict(digits_run["states"][phase])
    return model


def forget_split(digits_run: dict[str, Any]) -> VisionData:
    """A random 15% of the ~250 training images, batches of 64 (what ``grokplug.unlearn`` builds)."""
    return grokplug.run_data(digits_run["run"], forget_rate=0.15, seed=0, batch_size=64)


@pytest.fixture
def count_updates() -> Iterator[list[int]]:
    """Counts every optimizer update through PyTorch's global post-step hook, as the step monitor does."""
    counter = [0]

    def hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        counter[0] += 1

    handle = register_optimizer_step_post_hook(hook)
    yield counter
    handle.remove()


@pytest.mark.parametrize("phase", ["grok", "pre"])
@pytest.mark.parametrize("name", BUILTIN)
def test_every_method_lowers_forget_accuracy_with_its_defaults(
    pm: GrokplugPluginManager, digits_run: dict[str, Any], name: str, phase: str
) -> None:
    torch.manual_seed(0)
    model, data = start_model(digits_run, phase), forget_split(digits_run)
    before = accuracy(model, data.forget)
    returned = pm.methods.get(name)(model, data, **STRENGTH_FOR_TEST.get(name, {}))
    after = accuracy(model, data.forget)
    assert returned is model  # changed in place and handed back
    assert before == 1.0 and after <= before - MIN_DROP, f"{name} from θ_{phase}: forget accuracy {before:.3f} -> {after:.3f}"
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_registry_lists_all_builtin_methods(pm: GrokplugPluginManager) -> None:
    described = {d["name"]: d for d in pm.methods.describe()}
    assert set(BUILTIN) <= set(described)
    for name in BUILTIN:
        entry = described[name]
        assert entry["domain"] == "vision" and entry["plugin"] == "grokplug.hooks.vision"
        assert entry["description"] and len(entry["description"]) > 20
        method = pm.methods.get(name)
        assert method.__doc__ and "Hyperparameters" in method.__doc__
    for alias, name in [("FT", "ft"), ("GA", "ga"), ("RL", "rl"), ("GradDiff", "graddiff"), ("NegGrad+", "graddiff"),
                        ("l1_sparse", "l1-sparse"), ("SalUn", "salun"), ("SCRUB", "scrub"), ("SSD", "ssd"),
                        ("FisherForgetting", "fisher"), ("NablaTau", "nabla-tau")]:
        assert pm.methods.get(alias) is pm.methods.get(name)


@pytest.mark.parametrize("name", BUILTIN)
def test_profiles_and_unknown_hyperparameters(pm: GrokplugPluginManager, name: str) -> None:
    method = pm.methods.get(name)
    cifar = method.hyperparameters("cifar")
    assert set(cifar) == set(method.defaults)  # cifar_defaults only override known knobs
    assert cifar == {**method.defaults, **method.cifar_defaults}
    for preset, profile in method.preset_defaults.items():  # per-preset profiles override known knobs only
        assert set(method.hyperparameters(preset)) == set(method.defaults)
        assert method.hyperparameters(preset) == {**method.defaults, **profile}
    with pytest.raises(UsageError, match="no hyperparameter"):
        method(torch.nn.Linear(64, 10), None, learning_rate_typo=0.1)
    if method.iterative:
        assert {"epochs", "max_steps"} <= set(method.defaults)
    else:
        assert method.strength_param in method.defaults


@pytest.mark.parametrize("name", BUILTIN)
def test_updates_are_visible_to_the_global_optimizer_hook(
    pm: GrokplugPluginManager, digits_run: dict[str, Any], count_updates: list[int], name: str
) -> None:
    method = pm.methods.get(name)
    torch.manual_seed(0)
    method(start_model(digits_run), forget_split(digits_run))
    if method.iterative:
        assert count_updates[0] > 0
        count_updates[0] = 0
        method(start_model(digits_run), forget_split(digits_run), max_steps=3)
        assert count_updates[0] == 3  # the budget caps the method's own updates exactly
        count_updates[0] = 0
        model = start_model(digits_run)
        method(model, forget_split(digits_run), max_steps=0)
        assert count_updates[0] == 0
        assert all(torch.equal(v, digits_run["states"]["grok"][k]) for k, v in model.state_dict().items())
    else:
        assert count_updates[0] == 0


def test_salun_leaves_every_weight_outside_its_mask_untouched(
    digits_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[dict[str, torch.Tensor]] = []
    original = methods_salun_scrub_ssd.saliency_mask

    def spy(model: torch.nn.Module, data: VisionData, mask_ratio: float) -> dict[str, torch.Tensor]:
        used.append(mask := original(model, data, mask_ratio))  # the mask the run really used
        return mask

    monkeypatch.setattr(methods_salun_scrub_ssd, "saliency_mask", spy)
    model = start_model(digits_run)
    theta0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(0)
    methods_salun_scrub_ssd.SalUn()(model, forget_split(digits_run), mask_ratio=0.3)
    (mask,) = used
    total = sum(m.numel() for m in mask.values())
    assert sum(int(m.sum()) for m in mask.values()) == int(total * 0.3)  # global top-k, as generate_mask.py
    moved = 0
    for name, param in model.named_parameters():
        outside = mask[name] == 0
        assert torch.equal(param.detach()[outside], theta0[name][outside]), f"{name}: masked-out weights moved"
        moved += int((param.detach() != theta0[name]).sum())
    assert moved > 0


def test_ssd_changes_exactly_the_dampened_weights(digits_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    importances: list[dict[str, torch.Tensor]] = []
    original = methods_salun_scrub_ssd.ssd_importance

    def spy(model: torch.nn.Module, loader: Any) -> dict[str, torch.Tensor]:
        importances.append(result := original(model, loader))
        return result

    monkeypatch.setattr(methods_salun_scrub_ssd, "ssd_importance", spy)
    model = start_model(digits_run)
    theta0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    alpha = 5.0
    methods_salun_scrub_ssd.SSD()(model, forget_split(digits_run), selection_weighting=alpha)
    forget_imp, train_imp = importances
    dampened = 0
    for name, param in model.named_parameters():
        selected = forget_imp[name] > alpha * train_imp[name]
        changed = param.detach() != theta0[name]
        assert not (changed & ~selected).any(), f"{name}: SSD changed a weight it did not select"
        assert torch.all(param.detach()[selected].abs() <= theta0[name][selected].abs())  # dampened, never grown
        dampened += int(changed.sum())
    assert dampened > 0


@pytest.mark.parametrize("name", BUILTIN)
def test_methods_stay_on_the_models_device(
    pm: GrokplugPluginManager, digits_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Batches go to ``next(model.parameters()).device``; nothing is ever moved with ``.cuda()``."""

    def no_cuda(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a method called .cuda()")

    monkeypatch.setattr(torch.Tensor, "cuda", no_cuda)
    monkeypatch.setattr(torch.nn.Module, "cuda", no_cuda)
    model = start_model(digits_run).to(torch.device("cpu"))
    method = pm.methods.get(name)
    extra = {"max_steps": 2} if method.iterative else {}
    method(model, forget_split(digits_run), **extra)
    assert {p.device for p in model.parameters()} == {torch.device("cpu")}
