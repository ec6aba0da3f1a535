"""Serving the start: request_checkpoint, load_checkpoint, build_model and @grok_aware."""

from __future__ import annotations

import pytest
import torch

import grokplug
from grokplug import hookimpl
from grokplug._atomic import sha256_file
from grokplug._rundir import RunDir
from grokplug._types import CheckpointRef
from grokplug.errors import ArchitectureMismatchError, CheckpointError, NoGrokError, RunDirError, UsageError

from support_runs import run_scripted, scripted_memorization


@pytest.fixture(scope="module")
def grokked_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("resolve") / "run"
    run_scripted(path)
    return path


@pytest.fixture(scope="module")
def memorized_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("resolve") / "mem"
    run_scripted(path, metrics=scripted_memorization)
    return path


def test_request_each_phase(grokked_run):
    report = RunDir(grokked_run).report()
    grok = grokplug.request_checkpoint(grokked_run, "grok")
    pre = grokplug.request_checkpoint(grokked_run, phase="pre")
    final = grokplug.request_checkpoint(grokked_run, phase="final")
    best = grokplug.request_checkpoint(grokked_run, phase="best")
    assert (grok.step, pre.step, final.step) == (report.grok_step, report.pre_step, 3000)
    assert grok.label == "grokking" and grok.metrics["val_acc"] >= 0.95 and pre.metrics["val_acc"] < 0.1
    assert best.metrics["val_acc"] == max(r["val_acc"] for r in RunDir(grokked_run).history() if r["step"] in RunDir(grokked_run).checkpoint_steps())
    assert grok.sha256 == sha256_file(grok.path) and grok.provider == "local-run-dir"
    assert grokplug.request_checkpoint(grokked_run, str(pre.step)).step == pre.step


def test_load_checkpoint_round_trip_and_source_untouched(grokked_run):
    ref = grokplug.request_checkpoint(grokked_run, "grok")
    before = sha256_file(ref.path)
    model = torch.nn.Linear(4, 3)
    loaded = grokplug.load_checkpoint(model, grokked_run, "grok")
    assert loaded == ref
    expected = torch.nn.Linear(4, 3).weight.detach() * 0
    assert not torch.equal(model.weight.detach(), expected)
    with torch.no_grad():
        model.weight.mul_(0)  # training the loaded model must not touch the source file
    assert sha256_file(ref.path) == before


def test_wrong_architecture_lists_keys_and_shapes(grokked_run):
    with pytest.raises(ArchitectureMismatchError) as info:
        grokplug.load_checkpoint(torch.nn.Sequential(torch.nn.Linear(4, 5)), grokked_run, "grok")
    message = str(info.value)
    assert "missing from checkpoint (2): 0.bias; 0.weight" in message
    assert "not in model (2): bias; weight" in message
    with pytest.raises(ArchitectureMismatchError, match=r"shape mismatch \(2\): bias: checkpoint \(3,\) vs model \(5,\)"):
        grokplug.load_checkpoint(torch.nn.Linear(4, 5), grokked_run, "grok")


def test_no_grok_gives_label_and_fallback_advice(memorized_run):
    with pytest.raises(NoGrokError, match=r"never grokked \(label: memorization.*fallback='final'"):
        grokplug.request_checkpoint(memorized_run, "grok")
    ref = grokplug.request_checkpoint(memorized_run, "grok", fallback="final")
    assert ref.phase == "final" and ref.requested_phase == "grok" and ref.step == 3000
    assert grokplug.request_checkpoint(memorized_run, "pre").step is not None


def test_unknown_phase_and_missing_run(tmp_path, grokked_run):
    with pytest.raises(UsageError, match="unknown phase 'middle'"):
        grokplug.request_checkpoint(grokked_run, "middle")
    with pytest.raises(RunDirError, match="does not exist"):
        grokplug.request_checkpoint(tmp_path / "missing", "grok")


def test_hook_grokplug_resolve_checkpoint(grokked_run, pm):
    """A plugin can serve its own sources; local run dirs still go to the built-in provider."""
    real = grokplug.request_checkpoint(grokked_run, "grok")

    class MemoryProvider:
        @hookimpl
        def grokplug_resolve_checkpoint(self, request):
            if request.source.startswith("mem://"):
                return CheckpointRef(phase=request.phase, step=7, path=real.path, sha256=real.sha256, provider="mem")
            return None

    pm.register(MemoryProvider(), name="mem-provider")
    assert grokplug.request_checkpoint("mem://anything", "grok").provider == "mem"
    assert grokplug.request_checkpoint(grokked_run, "grok").provider == "local-run-dir"
    pm.unregister(name="mem-provider")
    with pytest.raises(CheckpointError, match="no plugin can resolve 'mem://anything'"):
        grokplug.request_checkpoint("mem://anything", "grok")


def test_hook_grokplug_detect_phases(grokked_run, pm):
    from grokplug._detect import GrokReport

    class AlwaysComprehension:
        @hookimpl
        def grokplug_detect_phases(self, history):
            return GrokReport.from_dict({"label": "comprehension", "n_evals": len(history)})

    assert grokplug.detect_phases(grokked_run).label == "grokking"
    pm.register(AlwaysComprehension(), name="my-detector")
    assert grokplug.detect_phases(grokked_run).label == "comprehension"


def test_build_model_needs_a_preset(grokked_run):
    with pytest.raises(CheckpointError, match="not made by a preset"):
        grokplug.build_model(grokked_run)


def test_hook_grokplug_before_unlearn(grokked_run, pm):
    events = []

    class Watcher:
        @hookimpl
        def grokplug_before_unlearn(self, context):
            events.append(("before", context.method, context.start.phase, float(context.model.weight.detach().sum())))

        @hookimpl
        def grokplug_after_unlearn(self, context, result):
            events.append(("after", result.method, result.start.step, result.model is context.model))

    pm.register(Watcher(), name="watcher")

    @grokplug.grok_aware(grokked_run, phase="pre")
    def ascend(model, forget_x, steps=3):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(steps):
            opt.zero_grad()
            (-model(forget_x).pow(2).mean()).backward()
            opt.step()
        return None  # in place, like OPTML methods

    model = torch.nn.Linear(4, 3)
    assert ascend(model, torch.ones(2, 4)) is None
    pre = grokplug.request_checkpoint(grokked_run, "pre")
    ref_model = torch.nn.Linear(4, 3)
    grokplug.load_checkpoint(ref_model, grokked_run, "pre")
    assert events[0][:3] == ("before", "test_hook_grokplug_before_unlearn.<locals>.ascend", "pre")
    assert events[0][3] == pytest.approx(float(ref_model.weight.detach().sum()))
    assert events[1] == ("after", "test_hook_grokplug_before_unlearn.<locals>.ascend", pre.step, True)
    assert ascend.__name__ == "ascend" and ascend.grokplug_start == (grokked_run, "pre")


def test_hook_grokplug_after_unlearn(grokked_run, pm):
    results = []

    class Watcher:
        @hookimpl
        def grokplug_after_unlearn(self, result):
            results.append(result.model)

    pm.register(Watcher(), name="watcher")
    fresh = torch.nn.Linear(4, 3)

    @grokplug.grok_aware(grokked_run, model_arg="net")
    def replace_model(net, retain, forget, validation):  # NeurIPS-2023 kit shape: returns a new net
        return fresh

    assert replace_model(torch.nn.Linear(4, 3), None, None, None) is fresh
    assert results == [fresh]


def test_hook_grokplug_on_unlearn_step(pm):
    seen = []

    class StopAtTwo:
        @hookimpl
        def grokplug_on_unlearn_step(self, context, step, metrics):
            seen.append((context.method, step, metrics["forget_acc"]))
            return step >= 2

    pm.register(StopAtTwo(), name="stopper")
    context = grokplug.UnlearnContext(method="ga", model=torch.nn.Linear(1, 1))
    assert pm.unlearn_step(context, 1, {"forget_acc": 0.9, "retain_acc": 1.0}) is False
    assert pm.unlearn_step(context, 2, {"forget_acc": 0.5, "retain_acc": 1.0}) is True
    assert seen == [("ga", 1, 0.9), ("ga", 2, 0.5)]


def test_decorator_misuse(grokked_run):
    with pytest.raises(UsageError, match="has no parameter 'model'"):
        grokplug.grok_aware(grokked_run)(lambda net: net)

    @grokplug.grok_aware(grokked_run)
    def method(model):
        return model

    with pytest.raises(UsageError, match="must be a torch.nn.Module, got str"):
        method("not a model")
