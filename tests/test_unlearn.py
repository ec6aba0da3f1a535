"""grokplug.unlearn and `grokplug unlearn`: the monitor, targets, outputs, and the untouched source."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import grokplug
from grokplug import hookimpl
from grokplug._atomic import sha256_file
from grokplug._rundir import RunDir
from grokplug._unlearning_method import UnlearningMethod
from grokplug.cli import main
from grokplug.errors import DivergedError, UsageError
from grokplug.vision.monitor import StepMonitor, resolve_target


class ScriptedForgetting(UnlearningMethod):
    """Zeroes one more forget sample's logit row per update (a method whose progress is known exactly)."""

    name = "scripted"
    defaults = {"updates": 10}

    def run(self, model, data, updates):
        opt = torch.optim.SGD(model.parameters(), lr=0.0)  # its own optimizer, as OPTML methods build
        for _ in range(updates):
            model.forgotten += 1
            opt.step()
        return None


class Lookup(torch.nn.Module):
    """Predicts the label for sample i correctly until it is 'forgotten' (x holds the sample index)."""

    def __init__(self, labels):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.labels = labels
        self.forgotten = 0

    def forward(self, x):
        idx = x[:, 0].long()
        logits = torch.nn.functional.one_hot(self.labels[idx], 3).float()
        wrong = torch.nn.functional.one_hot((self.labels[idx] + 1) % 3, 3).float()
        gone = (idx < self.forgotten).float().unsqueeze(1)
        return logits * (1 - gone) + wrong * gone + self.w * 0


def lookup_setup(n=10):
    labels = torch.arange(n) % 3
    x = torch.arange(n).float().unsqueeze(1)
    loader = DataLoader(TensorDataset(x, labels), batch_size=4)
    return Lookup(labels), loader


def test_monitor_counts_updates_and_stops_at_target():
    model, forget = lookup_setup()
    with StepMonitor(model, forget, forget, target=0.5) as monitor:
        ScriptedForgetting().run(model, None, updates=10)
    assert monitor.steps_to_target == 5 and monitor.steps == 5 and monitor.stopped_early
    assert [p[0] for p in monitor.trail] == [0, 1, 2, 3, 4, 5]
    assert [p[1] for p in monitor.trail] == [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]


def test_monitor_without_stopping_records_the_whole_trail_every_k():
    model, forget = lookup_setup()
    with StepMonitor(model, forget, forget, target=0.5, eval_every=3, stop_at_target=False) as monitor:
        ScriptedForgetting().run(model, None, updates=10)
    assert monitor.steps == 10 and not monitor.stopped_early
    assert [p[0] for p in monitor.trail] == [0, 3, 6, 9, 10]
    assert monitor.steps_to_target == 6  # first evaluation at or below the target


def test_monitor_never_reached_and_met_at_start():
    model, forget = lookup_setup()
    with StepMonitor(model, forget, forget, target=0.0) as monitor:
        ScriptedForgetting().run(model, None, updates=3)
    assert monitor.steps_to_target is None
    model, forget = lookup_setup()
    with StepMonitor(model, forget, forget, target=1.0) as monitor:
        pass
    assert monitor.steps_to_target == 0 and monitor.met_at_start


def test_monitor_stops_when_a_plugin_asks():
    model, forget = lookup_setup()
    with StepMonitor(model, forget, forget, target=None, on_eval=lambda step, m: step >= 2) as monitor:
        ScriptedForgetting().run(model, None, updates=10)
    assert monitor.steps == 2 and monitor.stopped_early


def test_monitor_refuses_nan_outputs():
    model = torch.nn.Linear(1, 3)
    loader = DataLoader(TensorDataset(torch.ones(4, 1), torch.zeros(4, dtype=torch.long)), batch_size=2)
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    with pytest.raises(DivergedError, match="NaN or infinite"), StepMonitor(model, loader, loader, target=0.1):
        pass


def test_resolve_target():
    start = {"test_acc": 0.9, "forget_acc": 0.8}
    assert resolve_target(0.3, start) == 0.3
    assert resolve_target("test", start) == 0.9
    assert resolve_target("frac:0.5", start) == pytest.approx(0.4)
    assert resolve_target("retrain", start, {"forget_acc": 0.7}) == 0.7
    assert resolve_target("none", start) is None
    for bad in ("1.5", "frac:2", "retrain", "sometimes"):
        with pytest.raises(UsageError):
            resolve_target(bad, start)


def test_unlearn_from_both_starts_on_a_real_run(digits_run_dir, tmp_path, pm):
    steps_seen = []

    class Watch:
        @hookimpl
        def grokplug_on_unlearn_step(self, step, metrics):
            steps_seen.append((step, metrics["forget_acc"]))

    pm.register(Watch(), name="watch")
    weights = {p: sha256_file(grokplug.request_checkpoint(digits_run_dir, p).path) for p in ("pre", "grok")}
    for start in ("pre", "grok"):
        result = grokplug.unlearn("ga", source=digits_run_dir, start=start, target="frac:0.8", seed=1,
                                  output_dir=tmp_path / start)
        assert result.start.phase == start and result.steps_applicable
        assert result.trail[0][0] == 0 and result.trail[0][1] == result.metrics["start_metrics"]["forget_acc"]
        if result.steps_to_target is not None:
            assert result.trail[-1][1] <= result.metrics["target_forget_acc"]
        saved = json.loads((tmp_path / start / "result.json").read_text())
        assert saved["steps_to_target"] == result.steps_to_target and saved["split"]["n_forget"] > 0
        assert (tmp_path / start / "model.safetensors").stat().st_size > 0
    assert steps_seen and steps_seen[0][0] == 0
    # the source checkpoints were only read
    assert {p: sha256_file(grokplug.request_checkpoint(digits_run_dir, p).path) for p in ("pre", "grok")} == weights
    assert RunDir(digits_run_dir).status == "finished"


def test_unlearn_refuses_an_existing_output_dir(digits_run_dir, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="already exists and is not empty"):
        grokplug.unlearn("ssd", source=digits_run_dir, output_dir=tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_class_wise_forgetting_removes_the_class_from_test(digits_run_dir):

    data = grokplug.run_data(digits_run_dir, forget_classes=[3])
    assert data.split.kind == "class"
    assert all(int(y) == 3 for _, ys in data.forget for y in ys)
    assert all(int(y) != 3 for _, ys in data.test for y in ys)


def test_unlearn_cli_json(digits_run_dir, capsys):
    capsys.readouterr()
    assert main(["unlearn", str(digits_run_dir), "--method", "rl", "--start", "grok", "--forget-rate", "0.1",
                 "--seed", "2", "--target", "frac:0.9", "--set", "epochs=2", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"steps_to_target", "forget_acc", "retain_acc", "test_acc", "mia_svc_efficacy", "mia_loss_lr"} <= set(info)
    assert info["start"] == "grok" and info["hparams"]["epochs"] == 2 and info["target"] == "frac:0.9"
    assert info["split"]["rate"] == 0.1 and info["split"]["seed"] == 2


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--method", "nope"], "unknown method 'nope'"),
        (["--method", "ga", "--set", "bogus=1"], "has no hyperparameter(s) bogus"),
        (["--method", "ga", "--target", "sometimes"], "unknown target 'sometimes'"),
        (["--method", "ga", "--forget-class", "42"], "do not occur in the training set"),
    ],
)
def test_unlearn_cli_misuse(digits_run_dir, argv, needle, capsys):
    assert main(["unlearn", str(digits_run_dir), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("grokplug: error:") and needle in err and "\n" not in err


def test_unlearn_runs_an_adapted_third_party_function(digits_run_dir):
    """The NeurIPS-2023 kit's shape, written as the kit writes it, through grokplug.unlearn."""
    from grokplug.adapters import KitAdapter

    def unlearning(net, retain, forget, validation):
        """Gradient ascent on forget for 5 epochs (kit style: builds its own optimizer, returns net)."""
        criterion = torch.nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
        net.train()
        for _ in range(5):
            for inputs, targets in forget:
                optimizer.zero_grad()
                (-criterion(net(inputs), targets)).backward()
                optimizer.step()
        return net

    result = grokplug.unlearn(KitAdapter(unlearning), source=digits_run_dir, start="grok", target="none")
    batches = -(-len(result.metrics["split"]["forget"]) // 64)
    assert result.total_steps == 5 * batches  # updates of the kit's own optimizer were counted
    assert result.metrics["forget_acc"] < result.metrics["start_metrics"]["forget_acc"]


def test_retrain_target_is_computed_for_preset_runs(modular_run_dir):

    data = grokplug.run_data(modular_run_dir, forget_rate=0.15, seed=0)
    reference = grokplug.retain_only_reference(modular_run_dir, data, seed=0, max_steps=300)
    assert set(reference) == {"forget_acc", "retain_acc", "test_acc"}
    with pytest.warns(DeprecationWarning, match="use grokplug.retain_only_reference"):  # the old name still works
        # a fresh split object: the retrain reads the retain loader, whose shuffle (summation order) advances
        again = grokplug.retrain_reference(modular_run_dir, grokplug.run_data(modular_run_dir, forget_rate=0.15, seed=0),
                                           seed=0, max_steps=300)
    assert again == reference
    # without data: the run's split for the domain's options (the same seeded split as `data`)
    assert grokplug.retain_only_reference(modular_run_dir, forget_rate=0.15, max_steps=300) == reference
    # the domain-neutral entry point gives what the vision function gives, its step cap included
    from grokplug.vision.retrain import retain_only_reference as vision_reference

    direct = vision_reference(modular_run_dir, grokplug.run_data(modular_run_dir, forget_rate=0.15, seed=0), seed=0, max_steps=300)
    assert direct == reference
    assert reference["retain_acc"] > 0.9  # it fits what it was trained on
    result = grokplug.unlearn("ga", source=modular_run_dir, start="grok", target="retrain",
                              retrain_metrics=reference, hparams={"epochs": 1})
    assert result.metrics["target_forget_acc"] == reference["forget_acc"]
    computed = grokplug.unlearn("ssd", source=modular_run_dir, target="retrain")  # one-shot: no target needed
    assert computed.metrics["target_forget_acc"] is None and computed.steps_to_target is None


def test_retrain_target_without_metrics_retrains_the_preset(modular_run_dir):
    result = grokplug.unlearn("ga", source=modular_run_dir, start="pre", target="retrain", hparams={"epochs": 1})
    reference = result.config["retrain_metrics"]
    assert reference is not None and result.metrics["target_forget_acc"] == reference["forget_acc"]


def test_one_shot_strength_sweep(digits_run_dir, capsys):
    info = grokplug.sweep_strength("ssd", [100.0, 10.0, 1.0], source=digits_run_dir, start="grok", target="frac:0.9")
    assert info["strength_param"] == "selection_weighting" and len(info["points"]) == 3
    forget = [p["forget_acc"] for p in info["points"]]
    assert forget[-1] <= forget[0] - 0.05  # α = 1 dampens far more weights than α = 100: it must forget more
    for point in info["points"]:  # frac:0.9 of the start's forget accuracy (1.0 on digits at θ_grok)
        assert point["target_forget_acc"] == pytest.approx(0.9)
        assert point["reached"] == (point["forget_acc"] <= 0.9)
    first = next((p["strength"] for p in info["points"] if p["reached"]), None)
    assert info["strength_to_target"] == first
    with pytest.raises(UsageError, match="declares no strength parameter"):
        grokplug.sweep_strength("ga", [1.0], source=digits_run_dir)
    assert main(["unlearn", str(digits_run_dir), "--method", "ssd", "--sweep", "50,5", "--json"]) == 0
    assert [p["strength"] for p in json.loads(capsys.readouterr().out)["points"]] == [50.0, 5.0]
