"""Adapters run third-party methods, written exactly in their toolkits' shapes, unchanged.

Every third-party function below is written the way its toolkit writes it (OPTML's ``.cuda()`` calls,
``utils.AverageMeter``-style bookkeeping, the starting kit's notebook loop, DeepUnlearn's
``BaseUnlearner``, SSD's ``ParameterPerturber``); only the model and data are tiny.
"""

from __future__ import annotations

import copy
import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn, optim
from torch.optim.optimizer import register_optimizer_step_post_hook

from grokplug import hookimpl
from grokplug.adapters import (
    KitAdapter,
    OptmlAdapter,
    TransformAdapter,
    UnlearnerAdapter,
    cuda_shim,
    from_toolkit,
    load_toolkit,
    optml_loaders,
    toolkit_of,
)
from grokplug.errors import UsageError
from grokplug.vision import VisionData, loaders_from_tensors, make_forget_split

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
N_TRAIN, N_FEAT, N_CLASSES, BATCH = 64, 8, 3, 16


# ---------------------------------------------------------------- fixtures
@pytest.fixture
def data() -> VisionData:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N_TRAIN + 32, N_FEAT, generator=gen)
    y = x[:, :N_CLASSES].argmax(dim=1)  # learnable labels
    split = make_forget_split(y[:N_TRAIN], rate=0.25, seed=0)
    return loaders_from_tensors(
        x[:N_TRAIN], y[:N_TRAIN], split, num_classes=N_CLASSES,
        val=(x[N_TRAIN:N_TRAIN + 16], y[N_TRAIN:N_TRAIN + 16]),
        test=(x[N_TRAIN + 16:], y[N_TRAIN + 16:]), batch_size=BATCH,
    )  # fmt: skip


@pytest.fixture
def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(N_FEAT, 16), nn.ReLU(), nn.Linear(16, N_CLASSES)).to(DEVICE)


@pytest.fixture
def steps() -> Iterator[list[int]]:
    """Counts every optimizer step in the process, as grokplug's step monitor does."""
    count = [0]
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: count.__setitem__(0, count[0] + 1))
    yield count
    handle.remove()


def snapshot(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def changed(m: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(v, before[k]) for k, v in m.state_dict().items())


def forget_loss(m: nn.Module, data: VisionData) -> float:
    with torch.no_grad():
        losses = [nn.functional.cross_entropy(m(x.to(DEVICE)), y.to(DEVICE)) for x, y in data.forget]
    return float(torch.stack(losses).mean())


class AverageMeter:  # OPTML utils.AverageMeter
    def __init__(self) -> None:
        self.sum, self.count, self.avg = 0.0, 0, 0.0

    def update(self, val: float, n: int = 1) -> None:
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


# ---------------------------------------------------------------- OPTML: per-epoch bodies
SEEN: dict[str, Any] = {}


def GA(data_loaders, model, criterion, optimizer, epoch, args, mask=None):  # noqa: N802 (OPTML's name)
    """Gradient ascent on the forget set (OPTML unlearn/GA.py, inner body)."""
    SEEN.setdefault("calls", []).append((data_loaders, criterion, optimizer, epoch, args, mask))
    SEEN.setdefault("lrs", []).append(optimizer.param_groups[0]["lr"])
    train_loader = data_loaders["forget"]
    losses, top1 = AverageMeter(), AverageMeter()
    model.train()
    for image, target in train_loader:
        image = image.cuda()
        target = target.cuda()
        output_clean = model(image)
        loss = -criterion(output_clean, target)
        optimizer.zero_grad()
        loss.backward()
        if mask:
            for name, param in model.named_parameters():
                if param.grad is not None:
                    param.grad *= mask[name]
        optimizer.step()
        prec1 = (output_clean.argmax(1) == target).float().mean() * 100
        losses.update(loss.item(), image.size(0))
        top1.update(prec1.item(), image.size(0))
    return top1.avg


def test_optml_epoch_body_gets_optml_outer_loop(model, data, steps):
    SEEN.clear()
    adapter = OptmlAdapter(GA, args={"decreasing_lr": "2"}, cuda_shim=True)
    assert adapter.kind == "epoch" and adapter.name == "GA" and adapter.iterative
    assert adapter.description.startswith("Gradient ascent")
    hp = adapter.hyperparameters(unlearn_epochs=3, unlearn_lr=0.05)
    assert hp["momentum"] == 0.9 and hp["weight_decay"] == 5e-4 and hp["batch_size"] == 256
    before, loss_before = snapshot(model), forget_loss(model, data)

    out = adapter.run(model, data, **hp)

    assert out is model and changed(model, before)
    assert forget_loss(model, data) > loss_before  # ascent did what GA intends
    calls = SEEN["calls"]
    assert [c[3] for c in calls] == [0, 1, 2]
    loaders, criterion, optimizer, _, args, mask = calls[0]
    assert list(loaders) == ["retain", "forget", "val", "test"] and mask is None
    assert loaders["forget"].dataset is not data.forget.dataset  # private copies
    assert len(loaders["forget"].dataset) == len(data.forget.dataset)
    assert isinstance(criterion, nn.CrossEntropyLoss) and type(optimizer) is optim.SGD
    group = optimizer.param_groups[0]
    assert (group["momentum"], group["weight_decay"]) == (0.9, 5e-4)
    assert SEEN["lrs"] == pytest.approx([0.05, 0.05, 0.005])  # MultiStepLR(milestones=[2], 0.1)
    assert (args.dataset, args.num_classes, args.imagenet_arch, args.rewind_epoch) == ("cifar10", 3, False, 0)
    assert args.unlearn == "GA" and args.unlearn_lr == 0.05 and args.decreasing_lr == "2"
    assert steps[0] == 3 * len(data.forget)  # the adapter's own SGD is seen by the global hook


def test_optml_saliency_mask_passed_positionally(model, data):
    SEEN.clear()
    mask = {n: torch.ones_like(p) for n, p in model.named_parameters()}
    mask["0.weight"] = torch.zeros_like(mask["0.weight"])  # freeze the first layer's weights
    before = snapshot(model)
    adapter = OptmlAdapter(GA, mask=mask, args={"weight_decay": 0.0}, cuda_shim=True)
    adapter.run(model, data, **adapter.hyperparameters(unlearn_epochs=1))
    got = SEEN["calls"][0][5]
    assert set(got) == set(mask) and all(torch.equal(got[k].cpu(), mask[k]) for k in mask)
    assert torch.equal(model[0].weight, before["0.weight"]) and changed(model, before)
    with pytest.raises(UsageError, match="mask does not match"):
        adapter.run(model, data, **adapter.hyperparameters(mask={"0.weight": mask["0.weight"]}))


def FT(data_loaders, model, criterion, optimizer, epoch, args):  # noqa: N802 (Sparse style, no mask)
    for image, target in data_loaders["retain"]:
        loss = criterion(model(image.cuda()), target.cuda())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_optml_body_without_mask_refuses_a_mask(model, data):
    adapter = OptmlAdapter(FT, cuda_shim=True)
    assert adapter.kind == "epoch"
    with pytest.raises(UsageError, match="takes no mask"):
        adapter.run(model, data, **adapter.hyperparameters(mask={}))


# ---------------------------------------------------------------- OPTML: outer functions
def iterative_unlearn(unlearn_iter_func):
    """OPTML's decorator (unlearn/impl.py), without rewinding: builds its own SGD + MultiStepLR."""

    def _wrapped(data_loaders, model, criterion, args, mask=None, **kwargs):
        decreasing_lr = list(map(int, args.decreasing_lr.split(",")))
        optimizer = torch.optim.SGD(
            model.parameters(), args.unlearn_lr, momentum=args.momentum, weight_decay=args.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=decreasing_lr, gamma=0.1)
        for epoch in range(0, args.unlearn_epochs):
            unlearn_iter_func(data_loaders, model, criterion, optimizer, epoch, args, mask, **kwargs)
            scheduler.step()

    return _wrapped


def test_optml_decorated_method_builds_own_optimizer_returns_none(model, data, steps):
    SEEN.clear()
    decorated = iterative_unlearn(GA)
    adapter = OptmlAdapter(decorated, name="GA")
    assert adapter.kind == "outer"
    before = snapshot(model)
    with cuda_shim(DEVICE):
        out = adapter.run(model, data, **adapter.hyperparameters(unlearn_epochs=2))
    assert out is model and changed(model, before)  # None from OPTML -> the in-place model
    assert steps[0] == 2 * len(data.forget)  # updates by OPTML's internally built optimizer


def fisher(data_loaders, model, criterion, args):
    """One-shot Fisher-style noise (non-iterative OPTML shape), returning the model."""
    SEEN["fisher"] = (data_loaders, criterion, args)
    noisy = copy.deepcopy(model)
    with torch.no_grad():
        for p in noisy.parameters():
            p.add_(args.alpha * torch.randn_like(p))
    return noisy


def test_optml_outer_returning_a_model(model, data, steps):
    adapter = OptmlAdapter(fisher, args={"dataset": "cifar100"})
    out = adapter.run(model, data, **adapter.hyperparameters(alpha=0.5))
    assert isinstance(out, nn.Module) and out is not model and steps[0] == 0
    loaders, criterion, args = SEEN["fisher"]
    assert list(loaders) == ["retain", "forget", "val", "test"] and isinstance(criterion, nn.CrossEntropyLoss)
    assert (args.alpha, args.dataset, args.num_classes) == (0.5, "cifar100", N_CLASSES)


def test_optml_refuses_args_its_methods_cannot_use(model, data):
    adapter = OptmlAdapter(fisher)
    for bad in ({"dataset": "mnist"}, {"imagenet_arch": True}, {"rewind_epoch": 3}):
        with pytest.raises(UsageError):
            adapter.run(model, data, **adapter.hyperparameters(**bad))
    with pytest.raises(UsageError, match="no hyperparameter"):
        adapter.hyperparameters(unlearn_lrr=0.1)


def relabel_and_convert(data_loaders, model, criterion, args):
    """What RL's cifar100 branch and utils.dataset_convert_to_test do to the datasets."""
    forget = data_loaders["forget"].dataset
    forget.targets = np.random.randint(0, args.num_classes, forget.targets.shape)  # RL's relabelling
    retain = data_loaders["retain"].dataset
    retain.targets[:] = -retain.targets - 1  # in-place marking (replace_indexes, only_mark=True)
    for loader in data_loaders.values():
        dataset = loader.dataset
        while hasattr(dataset, "dataset"):
            dataset = dataset.dataset
        dataset.transform, dataset.train = "ToTensor()", False
    SEEN["retain_ys"] = torch.cat([y for _, y in data_loaders["retain"]])


def test_optml_dataset_copies_absorb_targets_mutation(model, data):
    originals = {
        k: [t.clone() for t in getattr(data, k).dataset.tensors] for k in ("forget", "retain", "val")
    }
    OptmlAdapter(relabel_and_convert).run(model, data, **OptmlAdapter(relabel_and_convert).hyperparameters())
    assert (SEEN["retain_ys"] < 0).all()  # the relabelling reached the method's own batches ...
    for key, tensors in originals.items():  # ... but never the caller's data
        dataset = getattr(data, key).dataset
        assert all(torch.equal(a, b) for a, b in zip(dataset.tensors, tensors, strict=True))
        assert not hasattr(dataset, "transform")


def test_private_loaders_keep_batching_and_caller_rng(data):
    state = data.forget.generator.get_state()
    private = optml_loaders(data)["forget"]
    assert private.batch_size == BATCH and len(private) == len(data.forget)
    mine = [y for _, y in private]
    assert torch.equal(data.forget.generator.get_state(), state)  # caller's shuffle RNG untouched
    assert all(torch.equal(a, b) for a, b in zip(mine, [y for _, y in data.forget], strict=True))


# ---------------------------------------------------------------- starting kit
def unlearning(net, retain, forget, validation):
    """Unlearning by fine-tuning on retain (starting-kit notebook)."""
    SEEN["kit"] = (retain, forget, validation)
    epochs = 1
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    net.train()
    for _ in range(epochs):
        for inputs, targets in retain:
            inputs, targets = inputs.to(DEVICE), targets.to(DEVICE)
            optimizer.zero_grad()
            loss = criterion(net(inputs), targets)
            loss.backward()
            optimizer.step()
        scheduler.step()
    net.eval()
    return net


def unlearn_1(net, retain_loader, forget_loader):  # AlbinSou style: in place, returns None
    SEEN["albin"] = (retain_loader, forget_loader)
    with torch.no_grad():
        net[2].bias.zero_()


def test_kit_function_gets_loaders_and_its_net_back(model, data, steps):
    adapter = KitAdapter(unlearning)
    before = snapshot(model)
    out = adapter(model, data)
    assert out is model and changed(model, before) and steps[0] == len(data.retain)
    assert SEEN["kit"] == (data.retain, data.forget, data.val)
    assert adapter.description == "Unlearning by fine-tuning on retain (starting-kit notebook)."


def test_kit_in_place_none_and_bad_hyperparameters(model, data):
    out = KitAdapter(unlearn_1).run(model, data)
    assert out is model and SEEN["albin"] == (data.retain, data.forget)
    assert torch.count_nonzero(model[2].bias) == 0
    with pytest.raises(UsageError, match="does not take"):
        KitAdapter(unlearning, defaults={"epochs": 3})


# ---------------------------------------------------------------- DeepUnlearn BaseUnlearner
class BaseUnlearner:
    def __init__(self, cfg, device, writer=None, save_steps=False, should_evaluate=False):
        self.cfg, self.device = cfg, device
        BUILT.append(self)

    def unlearn(self, model, retain_loader, forget_loader, val_loader):
        raise NotImplementedError


BUILT: list[BaseUnlearner] = []


class NegativeGradient(BaseUnlearner):
    def unlearn(self, model, retain_loader, forget_loader, val_loader):
        self.loaders = (retain_loader, forget_loader, val_loader)
        optimizer = torch.optim.SGD(model.parameters(), lr=self.cfg.optimizer["lr"])
        criterion = nn.CrossEntropyLoss()
        model.train()
        for _ in range(self.cfg.num_epochs):
            for inputs, targets in forget_loader:
                inputs, targets = inputs.to(self.device), targets.to(self.device)
                optimizer.zero_grad()
                (-criterion(model(inputs), targets)).backward()
                optimizer.step()
        return model


def make_cfg(lr: float = 0.05, num_epochs: int = 1) -> SimpleNamespace:
    return SimpleNamespace(num_epochs=num_epochs, optimizer={"type": "torch.optim.SGD", "lr": lr})


def test_unlearner_class_built_fresh_per_run_with_device(model, data, steps):
    BUILT.clear()
    adapter = UnlearnerAdapter(NegativeGradient, init_kwargs={"cfg": make_cfg()})
    loss_before = forget_loss(model, data)
    assert adapter(model, data) is model and adapter(model, data) is model
    assert len(BUILT) == 2 and BUILT[0] is not BUILT[1]  # no state leaks between runs
    assert BUILT[0].device == DEVICE and BUILT[0].loaders == (data.retain, data.forget, data.val)
    assert steps[0] == 2 * len(data.forget) and forget_loss(model, data) > loss_before


def test_unlearner_factory_takes_hyperparameters_and_instances_run(model, data, steps):
    BUILT.clear()
    adapter = UnlearnerAdapter(
        lambda lr, num_epochs, device: NegativeGradient(make_cfg(lr, num_epochs), device),
        name="neg", defaults={"lr": 0.01, "num_epochs": 1}, strength_param="lr",
    )  # fmt: skip
    adapter(model, data, num_epochs=2)
    assert BUILT[0].cfg.num_epochs == 2 and steps[0] == 2 * len(data.forget)
    instance = NegativeGradient(make_cfg(), DEVICE)
    assert UnlearnerAdapter(instance).run(model, data) is model and instance.loaders[0] is data.retain
    with pytest.raises(UsageError, match="already built"):
        UnlearnerAdapter(instance, defaults={"lr": 0.1})
    with pytest.raises(UsageError, match="constructor keyword"):
        UnlearnerAdapter(NegativeGradient, init_kwargs={"config": 1})


# ---------------------------------------------------------------- SSD-style transform
class ParameterPerturber:  # if-loops/selective-synaptic-dampening src/ssd.py, abridged
    def __init__(self, model, opt, device="cuda", parameters=None):
        self.model, self.opt, self.device = model, opt, device
        self.dampening_constant = parameters["dampening_constant"]
        self.selection_weighting = parameters["selection_weighting"]

    def zerolike_params_dict(self, model):
        return {k: torch.zeros_like(p) for k, p in model.named_parameters()}

    def calc_importance(self, dataloader):
        criterion = nn.CrossEntropyLoss()
        importances = self.zerolike_params_dict(self.model)
        for batch in dataloader:
            x, _, y = batch
            x, y = x.to(self.device), y.to(self.device)
            self.opt.zero_grad()
            criterion(self.model(x), y).backward()
            for (_, p), (_, imp) in zip(self.model.named_parameters(), importances.items(), strict=True):
                if p.grad is not None:
                    imp.data += p.grad.data.clone().pow(2)
        for _, imp in importances.items():
            imp.data /= float(len(dataloader))
        return importances

    def modify_weight(self, original_importance, forget_importance):
        with torch.no_grad():
            for (_, p), (_, oimp), (_, fimp) in zip(
                self.model.named_parameters(),
                original_importance.items(),
                forget_importance.items(),
                strict=True,
            ):
                locations = torch.where(fimp > oimp.mul(self.selection_weighting))
                weight = ((oimp.mul(self.dampening_constant)).div(fimp)).pow(1)
                update = weight[locations]
                update[update > 1] = 1
                p[locations] = p[locations].mul(update)


def ssd_dampen(model, data, dampening_constant=1.0, selection_weighting=10.0):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    params = {"dampening_constant": dampening_constant, "selection_weighting": selection_weighting}
    pdr = ParameterPerturber(model, opt, DEVICE, params)
    model.eval()
    sample_importances = pdr.calc_importance(data.forget)
    original_importances = pdr.calc_importance(data.full_train)
    pdr.modify_weight(original_importances, sample_importances)


def test_ssd_transform_in_place_one_shot(model, data, steps):
    adapter = TransformAdapter(
        ssd_dampen, defaults={"dampening_constant": 1.0, "selection_weighting": 1.0},
        strength_param="dampening_constant", batches="triple",
    )  # fmt: skip
    assert not adapter.iterative and adapter.strength_param == "dampening_constant"
    before = snapshot(model)
    out = adapter(model, data, dampening_constant=0.5)
    assert out is model and changed(model, before) and steps[0] == 0
    for k, v in model.state_dict().items():  # dampening only shrinks weights
        assert (v.abs() <= before[k].abs() + 1e-7).all()
    with pytest.raises(UsageError, match="strength_param"):
        TransformAdapter(ssd_dampen, defaults={}, strength_param="dampening_constant")


def test_transform_gets_loader_dict(model, data):
    seen: dict[str, Any] = {}
    TransformAdapter(lambda m, loaders: seen.update(loaders), pass_data="loaders").run(model, data)
    assert list(seen) == ["forget", "retain", "full_train", "val", "test"] and seen["retain"] is data.retain


def test_adapters_register_through_a_plugin(pm):
    kit = KitAdapter(unlearning)

    class Plugin:
        @hookimpl
        def grokplug_register_methods(self, register):
            register("kit-ft", kit)

    pm.register(Plugin(), name="adapters-plugin")
    assert pm.methods.get("kit-ft") is kit


# ---------------------------------------------------------------- isolation of flat-script toolkits
def write_toolkit(root: Path, constant: float, extra: dict[str, str]) -> Path:
    root.mkdir()
    (root / "utils.py").write_text(f"CONSTANT = {constant}\n")
    (root / "unlearn").mkdir()
    (root / "unlearn" / "__init__.py").write_text(
        textwrap.dedent("""
        import torch

        def fill(data_loaders, model, criterion, args, mask=None):
            import utils  # resolved at call time, as flat-script toolkits do
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(utils.CONSTANT)

        def get_unlearn_method(name):
            if name == "fill":
                return fill
            raise NotImplementedError(f"Unlearn method {name} not implemented!")
    """)
    )
    for name, text in extra.items():
        (root / name).write_text(text)
    return root


@pytest.fixture
def two_toolkits(tmp_path: Path) -> tuple[Path, Path]:
    a = write_toolkit(tmp_path / "kit_a", 1.0, {"models.py": "NAME = 'a'\n"})
    b = write_toolkit(tmp_path / "kit_b", 2.0, {"datasets.py": "NAME = 'b'\n"})
    return a, b


def test_two_toolkits_side_by_side_leave_no_trace(two_toolkits, model, data, monkeypatch):
    hf_datasets = importlib.import_module("datasets")  # the real HF package must survive
    sentinel = ModuleType("models")
    monkeypatch.setitem(sys.modules, "models", sentinel)
    path_before = list(sys.path)

    adapter_a = from_toolkit(two_toolkits[0], "fill")
    adapter_b = from_toolkit(two_toolkits[1], "fill")
    assert adapter_a.toolkit is not adapter_b.toolkit and adapter_a.kind == "outer"
    model_b = copy.deepcopy(model)
    adapter_a.run(model, data, **adapter_a.hyperparameters())
    adapter_b.run(model_b, data, **adapter_b.hyperparameters())
    assert all((p == 1.0).all() for p in model.parameters())
    assert all((p == 2.0).all() for p in model_b.parameters())

    assert "utils" not in sys.modules and "unlearn" not in sys.modules
    assert sys.modules["models"] is sentinel and sys.modules["datasets"] is hf_datasets
    assert sys.path == path_before
    assert adapter_b.toolkit["datasets"].NAME == "b" and adapter_a.toolkit["models"].NAME == "a"
    assert sys.modules["datasets"] is hf_datasets and sys.modules["models"] is sentinel
    with pytest.raises(UsageError, match="not implemented"):
        from_toolkit(two_toolkits[0], "nope")


def test_toolkit_callables_found_automatically_and_nest(two_toolkits, model, data):
    tk_a, tk_b = load_toolkit(two_toolkits[0], "unlearn"), load_toolkit(two_toolkits[1], "unlearn")
    fill = tk_a["unlearn"].get_unlearn_method("fill")
    with pytest.raises(ModuleNotFoundError):  # outside its toolkit, `import utils` finds nothing
        fill(None, model, None, None)
    assert toolkit_of(fill) is tk_a and OptmlAdapter(fill).toolkit is tk_a
    OptmlAdapter(fill).run(model, data, **OptmlAdapter(fill).hyperparameters())
    assert all((p == 1.0).all() for p in model.parameters())
    wrapped = tk_b.wrap(tk_b["unlearn"].get_unlearn_method("fill"))
    wrapped(None, model, None, None)
    assert all((p == 2.0).all() for p in model.parameters())
    with tk_a.active():
        with tk_b.active():
            assert importlib.import_module("utils").CONSTANT == 2.0
        assert importlib.import_module("utils").CONSTANT == 1.0
    assert "utils" not in sys.modules


def test_failed_toolkit_import_leaves_no_trace(tmp_path):
    root = write_toolkit(tmp_path / "broken", 3.0, {"trainer.py": "import utils\nraise ImportError('x')\n"})
    path_before = list(sys.path)
    with pytest.raises(ImportError):
        load_toolkit(root, "trainer")
    assert "utils" not in sys.modules and "trainer" not in sys.modules and sys.path == path_before


# ---------------------------------------------------------------- CUDA shim
def cuda_only(data_loaders, model, criterion, args):
    model.cuda()
    for image, _ in data_loaders["forget"]:
        image = image.cuda()
        model(image)


def test_cuda_shim_runs_cuda_only_code(model, data):
    originals = (torch.Tensor.cuda, nn.Module.cuda)
    OptmlAdapter(cuda_only, cuda_shim=True).run(model, data, **OptmlAdapter(cuda_only).hyperparameters())
    assert (torch.Tensor.cuda, nn.Module.cuda) == originals  # patched only during the call
    plain = OptmlAdapter(cuda_only)
    if torch.cuda.is_available():
        plain.run(model, data, **plain.hyperparameters())
    else:
        with pytest.raises((AssertionError, RuntimeError)):
            plain.run(model, data, **plain.hyperparameters())
