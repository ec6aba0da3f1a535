"""One orchestrator for every entry point: a vision method by name and a third-party Trainer class on a
TOFU-style run go through the same ``grokplug._unlearn.unlearn``; every run is seeded (random, numpy, torch)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import torch
from support_llm import TOFU_EVAL_TEST
from transformers import Trainer

import grokplug
import grokplug._unlearn as orchestrator
from grokplug import UnlearningMethod, hookimpl
from grokplug.adapters import TrainerAdapter
from grokplug.llm.run_data import reference_root


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    @hookimpl
    def grokplug_before_unlearn(self, context):
        self.events.append(("before", context.method, context.config["domain"], getattr(context.start, "phase", None)))

    @hookimpl
    def grokplug_on_unlearn_step(self, context, step, metrics):
        self.events.append(("step", step, dict(metrics)))

    @hookimpl
    def grokplug_after_unlearn(self, context, result):
        self.events.append(("after", result.total_steps))


@pytest.fixture
def spied(pm, monkeypatch):
    """The hook recorder plus the seeds the orchestrator set (it seeds every run once, first thing)."""
    seeds: list[int] = []
    real = orchestrator._seed_everything
    monkeypatch.setattr(orchestrator, "_seed_everything", lambda seed: (seeds.append(seed), real(seed)))
    recorder = Recorder()
    pm.register(recorder, name="recorder")
    return recorder, seeds


def test_a_vision_method_by_name_goes_through_the_orchestrator(modular_run_dir, spied):
    recorder, seeds = spied
    result = grokplug.unlearn("ga", source=modular_run_dir, start="grok", seed=5, forget_rate=0.15, target="frac:0.5",
                              hparams={"epochs": 2})
    assert seeds == [5]
    kinds = [e[0] for e in recorder.events]
    assert kinds[0] == "before" and kinds[-1] == "after" and set(kinds[1:-1]) == {"step"}
    assert recorder.events[0][1:] == ("ga", "vision", "grok")
    assert [e[1] for e in recorder.events if e[0] == "step"] == [p[0] for p in result.trail]
    # step 0 is θ_grok on the forget set, computed here by hand from the split's positions
    model = grokplug.build_model(modular_run_dir)
    grokplug.load_checkpoint(model, modular_run_dir, "grok")
    run = grokplug.RunDir(modular_run_dir)
    preset = grokplug.get_plugin_manager().presets.get(run.config["preset"])
    tensors = preset.make_data(run.config, run.seed or 0)
    forget = torch.tensor(result.metrics["split"]["forget"])
    with torch.no_grad():
        by_hand = (model(tensors.train_x[forget]).argmax(-1) == tensors.train_y[forget]).float().mean().item()
    assert recorder.events[1][2]["forget_acc"] == pytest.approx(by_hand, abs=1e-9)
    assert result.config["domain"] == "vision" and result.start.sha256 == grokplug.request_checkpoint(modular_run_dir, "grok").sha256


class OldStyleAscent(Trainer):
    """Written the way open-unlearning writes its trainers: old compute_loss signature, forget batches."""

    def compute_loss(self, model, inputs, return_outputs=False):
        forget = inputs["forget"]
        outputs = model(input_ids=forget["input_ids"], attention_mask=forget["attention_mask"], labels=forget["labels"])
        return (-outputs.loss, outputs) if return_outputs else -outputs.loss


def _answer_accuracy_by_hand(model: Any, dataset: Any) -> float:
    """Mean over rows of the teacher-forced answer-token accuracy (prediction at t scores the token at t + 1)."""
    rows = []
    with torch.no_grad():
        for i in range(len(dataset)):
            item = dataset[i]
            ids, labels = item["input_ids"][None], item["labels"]
            logits = model(input_ids=ids).logits[0]
            pred, gold = logits[:-1].argmax(-1), labels[1:]
            keep = gold != -100
            rows.append((pred[keep] == gold[keep]).float().mean().item())
    return float(np.mean(rows))


def test_a_trainer_adapter_on_a_tofu_run_goes_through_the_same_orchestrator(tofu_run_dir, spied):
    recorder, seeds = spied
    adapter = TrainerAdapter(OldStyleAscent)
    result = grokplug.unlearn(adapter, source=tofu_run_dir, start="pre", target="frac:0.5", evaluate=False,
                              hparams={"max_steps": 2, "learning_rate": 1e-3})
    assert seeds == [0]
    assert recorder.events[0][1:] == ("OldStyleAscent", "llm", "pre")
    assert [e[1] for e in recorder.events if e[0] == "step"] == [0, 1, 2] and recorder.events[-1] == ("after", 2)
    assert result.start.sha256 == grokplug.request_checkpoint(tofu_run_dir, "pre").sha256
    model = grokplug.build_model(tofu_run_dir)
    grokplug.load_checkpoint(model, tofu_run_dir, "pre")
    data = grokplug.run_data(tofu_run_dir, forget_split="forget10")
    assert result.trail[0][1] == pytest.approx(_answer_accuracy_by_hand(model.eval(), data.forget), abs=1e-6)
    assert result.trail[-1][1] < result.trail[0][1]  # ascent made the forget answers less likely
    assert result.metrics["target_forget_acc"] == pytest.approx(0.5 * result.trail[0][1])
    assert not (reference_root(tofu_run_dir) / "retain90").exists()  # no target or metric needed the retain model


class NumpyNoise(UnlearningMethod):
    """Adds numpy noise to every weight, and a `random` scale: two draws the seed must fix."""

    name = "numpy-noise"
    domain = "vision"
    iterative = False

    def run(self, model, data):
        scale = 0.1 + random.random()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.from_numpy(np.random.normal(0.0, scale, tuple(p.shape))).to(p.dtype))
        return model


def _weights(result) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}


def test_every_run_is_seeded_random_numpy_and_torch(modular_run_dir):
    method = NumpyNoise()
    runs = [grokplug.unlearn(method, source=modular_run_dir, start="pre", seed=s, target="none") for s in (3, 3, 4)]
    first, again, other = (_weights(r) for r in runs)
    assert all(torch.equal(first[k], again[k]) for k in first)  # same seed: the same numpy and random draws
    assert not all(torch.equal(first[k], other[k]) for k in first)  # another seed: other draws
    assert runs[0].metrics["forget_acc"] == runs[1].metrics["forget_acc"]


def test_compare_cells_are_seeded(modular_run_dir, tmp_path, pm):
    class Plugin:
        @hookimpl
        def grokplug_register_methods(self, register):
            register("numpy-noise", NumpyNoise())

    pm.register(Plugin(), name="numpy-noise-plugin")
    kwargs = {"seeds": [3], "forget_rates": [0.15], "n_boot": 10, "targets": ["frac:0.5"], "recompute": True}
    a = grokplug.compare(modular_run_dir, ["numpy-noise"], out=tmp_path / "a", **kwargs)
    b = grokplug.compare(modular_run_dir, ["numpy-noise"], out=tmp_path / "b", **kwargs)
    finals = [[c["final"] for c in r.results["cells"]] for r in (a, b)]
    assert len(finals[0]) == 2 and finals[0] == finals[1]  # θ_pre and θ_grok cells, equal across the two calls


def test_the_retain_model_is_trained_only_when_needed_and_reused(tofu_run_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tofu_run_dir, run)
    common = {"source": run, "start": "pre", "hparams": {"max_steps": 1}, "eval_kwargs": TOFU_EVAL_TEST}
    plain = grokplug.unlearn("llm-ga", target="frac:0.5", evaluate=False, **common)
    assert not (reference_root(run) / "retain90").exists() and plain.config["retrain_metrics"] is None
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    retrain = grokplug.unlearn("llm-ga", target="retrain", evaluate=False, **common)
    reference = grokplug.RunDir(reference_root(run) / "retain90")
    assert reference.status == "finished" and reference_root(run) == (tmp_path / "run-reference").resolve()
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} == before  # source only read
    weights = sorted(reference_root(run).rglob("*.safetensors"))
    stamps = {p: p.stat().st_mtime_ns for p in weights}
    assert retrain.metrics["target_forget_acc"] == pytest.approx(retrain.config["retrain_metrics"]["forget_acc"])
    reused = grokplug.unlearn("llm-ga", target="frac:0.5", evaluate=True, **common)  # found in the run dir: reused
    assert reused.metrics["forget_quality"] is not None
    assert {p: p.stat().st_mtime_ns for p in weights} == stamps  # not retrained


class ToyData:
    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.forget_x, self.retain_x = torch.randn(16, 4, generator=gen), torch.randn(32, 4, generator=gen)
        self.forget_y, self.retain_y = torch.zeros(16, dtype=torch.long), torch.ones(32, dtype=torch.long)


def _accuracy(model: Any, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(-1) == y).float().mean().item()


class ToyDomain(grokplug.UnlearningDomain):
    """A third-party domain: two tensors per split, accuracy as the probe; the run uses the core monitor."""

    name = "toy"

    def probe(self, data):
        return lambda m: {"forget_acc": _accuracy(m, data.forget_x, data.forget_y),
                          "retain_acc": _accuracy(m, data.retain_x, data.retain_y)}

    def run_method(self, method, model, data, params, monitor, options):
        from grokplug._domain import RunOutcome
        from grokplug._monitor import StepMonitor

        with StepMonitor(model, monitor.probe, target=monitor.target, eval_every=monitor.eval_every,
                         stop_at_target=monitor.stop_at_target, on_eval=monitor.on_eval) as watcher:
            method.run(model, data, **params)
        return RunOutcome(model=model, steps=watcher.steps, steps_to_target=watcher.steps_to_target,
                          met_at_start=watcher.met_at_start, stopped_early=watcher.stopped_early, trail=watcher.trail)


class ToyAscent(UnlearningMethod):
    name = "toy-ascent"
    domain = "toy"
    defaults = {"steps": 30}

    def run(self, model, data, steps):
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for _ in range(steps):
            opt.zero_grad()
            (-torch.nn.functional.cross_entropy(model(data.forget_x), data.forget_y)).backward()
            opt.step()


def forget_loss(model: Any, data: ToyData) -> float:
    with torch.no_grad():
        return torch.nn.functional.cross_entropy(model(data.forget_x), data.forget_y).item()


class ToyPlugin:
    @hookimpl
    def grokplug_register_domains(self, register):
        register("toy", ToyDomain())

    @hookimpl
    def grokplug_register_metrics(self, register):
        register("toy_forget_loss", forget_loss)


def test_hook_grokplug_register_domains(pm, spied):
    """A third-party domain and metric plug into the orchestrator exactly as the built-in ones do."""
    recorder, seeds = spied
    pm.register(ToyPlugin(), name="toy-plugin")
    assert "toy" in pm.domains and pm.domains.entry("toy").plugin == "toy-plugin"
    torch.manual_seed(0)
    model, data = torch.nn.Linear(4, 2), ToyData()
    with torch.no_grad():  # start: class 0 everywhere, so every forget sample is right (forget acc 1)
        model.weight.zero_()
        model.bias.copy_(torch.tensor([1.0, 0.0]))
    start_forget = _accuracy(model, data.forget_x, data.forget_y)
    assert start_forget == 1.0
    result = grokplug.unlearn(ToyAscent(), model, splits=data, target="frac:0.5", metrics=["toy_forget_loss"], seed=1)
    assert seeds == [1] and result.config["domain"] == "toy" and result.start is None
    assert result.trail[0][1] == pytest.approx(start_forget)
    assert result.steps_to_target is not None and result.trail[-1][1] <= 0.5 * start_forget  # stopped at the target
    assert result.total_steps == result.steps_to_target == len(result.trail) - 1 and result.stopped_early
    assert result.metrics["toy_forget_loss"] == pytest.approx(forget_loss(result.model, data))
    assert result.metrics["start_metrics"]["forget_acc"] == pytest.approx(start_forget)
    assert [e[0] for e in recorder.events] == ["before", *["step"] * len(result.trail), "after"]


def test_a_method_of_an_unknown_domain_is_one_line(pm):
    with pytest.raises(grokplug.errors.UsageError, match="domain 'toy', which no plugin registers; known domains: function, llm, vision"):
        grokplug.unlearn(ToyAscent(), torch.nn.Linear(4, 2), splits=ToyData())


def test_grok_aware_goes_through_the_orchestrator_and_fires_every_step(modular_run_dir, spied):
    recorder, seeds = spied
    model = grokplug.build_model(modular_run_dir)
    x = torch.arange(8).reshape(4, 2) % 5
    y = torch.zeros(4, dtype=torch.long)

    def probe(m):
        with torch.no_grad():
            return {"forget_acc": (m(x).argmax(-1) == y).float().mean().item(), "retain_acc": 0.0}

    @grokplug.grok_aware(modular_run_dir, phase="pre", probe=probe)
    def three_steps(model, lr=0.05):
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        for _ in range(3):
            opt.zero_grad()
            (-torch.nn.functional.cross_entropy(model(x), y)).backward()
            opt.step()
        return "done"  # the function's own return value comes back unchanged

    assert three_steps(model) == "done"
    assert seeds == [0]
    assert recorder.events[0][1:] == ("test_grok_aware_goes_through_the_orchestrator_and_fires_every_step.<locals>.three_steps",
                                      "function", "pre")
    steps = [e for e in recorder.events if e[0] == "step"]
    assert [e[1] for e in steps] == [0, 1, 2, 3] and recorder.events[-1] == ("after", 3)
    assert steps[-1][2]["forget_acc"] == pytest.approx(probe(model)["forget_acc"])  # the model was changed in place


def test_a_start_checkpoint_changed_during_the_run_is_refused(modular_run_dir, tmp_path, pm):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(modular_run_dir, run)

    class Tamper:  # stands in for anything that writes to the source while a method runs
        @hookimpl
        def grokplug_before_unlearn(self, context):
            with open(context.start.path, "ab") as fh:
                fh.write(b"\0")

    pm.register(Tamper(), name="tamper")
    with pytest.raises(grokplug.GrokplugError, match="changed during unlearning; no result was written"):
        grokplug.unlearn("ga", source=run, start="pre", target="none", hparams={"epochs": 1}, output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_method_of_another_domain_than_the_run_is_refused_on_one_line(modular_run_dir, tmp_path, capsys):
    """Found by the long fuzz run: an LLM method on a vision run failed deep inside with KeyError 'n_authors'."""
    from grokplug.cli import main
    from grokplug.errors import UsageError

    with pytest.raises(UsageError, match="is a vision run; method 'llm-ga' is for the 'llm' domain"):
        grokplug.unlearn("llm-ga", source=modular_run_dir)
    assert main(["unlearn", str(modular_run_dir), "--method", "llm-ga", "--out", str(tmp_path / "o")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("grokplug: error: run ") and "llm-ga" in err[0]
    assert not (tmp_path / "o").exists()


def test_a_forget_set_too_small_for_the_loss_mia_leaves_that_metric_out(modular_run_dir):
    """Found by the long fuzz run: --forget-rate 1e-3 (4 examples) crashed in scikit-learn's stratified split."""
    from grokplug.errors import GrokplugWarning

    with pytest.warns(GrokplugWarning, match="needs at least 6 forget"):
        result = grokplug.unlearn("ga", source=modular_run_dir, forget_rate=1e-3, target="none",
                                  hparams={"epochs": 1})
    assert "mia_loss_lr" not in result.metrics and "mia_svc_efficacy" in result.metrics
    bigger = grokplug.unlearn("ga", source=modular_run_dir, forget_rate=0.15, target="none", hparams={"epochs": 1})
    assert "mia_loss_lr" in bigger.metrics  # only the too-small split loses it
