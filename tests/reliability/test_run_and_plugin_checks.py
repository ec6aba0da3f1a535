"""Hardening, part 3: reads stay inside the run, the run agrees with itself, plugin results are checked.

A symlinked ``grok.json`` once changed θ_grok silently; a ``grok.json`` contradicting the manifest's
pins was served; a plugin returning the wrong type crashed later with an ``AttributeError`` naming no
one; ``SystemExit`` in a hook ended the run without a word.
"""

from __future__ import annotations

import contextlib
import errno
import json
from pathlib import Path

import pytest

import grokplug
from grokplug import hookimpl
from grokplug.cli import main
from grokplug.errors import PluginError, RunDirError, UnsafePathError

from reliability_support import assert_one_line_error, copy_run, edit_manifest, tree_state

# -- fixed names resolve inside the run ------------------------------------------------------------


def _forged_report(run: Path, grok_step: int) -> dict:
    report = json.loads((run / "grok.json").read_text())
    report["grok_step"] = grok_step
    return report


@pytest.mark.parametrize("name", ["grok.json", "history.jsonl", "manifest.json", "splits.json"])
def test_a_fixed_file_that_is_a_symlink_out_of_the_run_is_refused(name, scripted_run, tmp_path, capsys):
    run = copy_run(scripted_run, tmp_path / "run")
    if not (run / name).exists():
        (run / name).write_text("{}")
    outside = tmp_path / f"outside-{name}"
    kept = grokplug.RunDir(run).checkpoint_steps()
    payload = json.dumps(_forged_report(run, kept[0])) if name == "grok.json" else (run / name).read_text()
    outside.write_text(payload)  # a valid file: only the path check stops it
    (run / name).unlink()
    (run / name).symlink_to(outside)
    with pytest.raises(UnsafePathError, match=f"{name} resolves to .*outside the run directory"):
        rd = grokplug.RunDir(run)
        {"grok.json": rd.report, "history.jsonl": rd.history, "splits.json": rd.splits}.get(name, lambda: None)()
    if name == "splits.json":
        return  # only preset runs read it on the CLI; the API refused it above
    capsys.readouterr()
    plot = ["--plot", str(tmp_path / "curves.png")] if name == "history.jsonl" else []  # the plot reads the history
    assert main(["inspect", str(run), *plot]) == 1
    assert_one_line_error(capsys.readouterr().err, "outside the run directory; refused")
    assert not (tmp_path / "curves.png").exists()


def test_grok_json_contradicting_the_manifest_pins_is_refused_naming_both(scripted_run, tmp_path, capsys):
    run = copy_run(scripted_run, tmp_path / "run")
    pinned = grokplug.RunDir(run).pins["grok"]
    other = next(s for s in grokplug.RunDir(run).checkpoint_steps() if s != pinned)
    (run / "grok.json").write_text(json.dumps(_forged_report(run, other)))
    with pytest.raises(RunDirError, match=f"θ_grok is step {other}, but the manifest pins step {pinned}"):
        grokplug.request_checkpoint(run, "grok")
    capsys.readouterr()
    assert main(["inspect", str(run)]) == 1
    assert_one_line_error(capsys.readouterr().err, f"step {other}", f"pins step {pinned}")


@pytest.mark.parametrize("edit, needle", [
    (lambda m: m["checkpoints"].update({"abc": m["checkpoints"][next(iter(m["checkpoints"]))]}), "checkpoint key 'abc'"),
    (lambda m: m.update(pins={"grok": "late"}), "'pins' must map phases to step numbers"),
    (lambda m: m.update(latest_step=-4), "'latest_step' is not a step number"),
    (lambda m: m.update(checkpoints=[1, 2]), "'checkpoints' is not a table"),
], ids=["non-numeric-key", "pin-not-a-step", "negative-latest", "checkpoints-a-list"])
def test_a_malformed_manifest_is_one_line(edit, needle, scripted_run, tmp_path, capsys):
    run = copy_run(scripted_run, tmp_path / "run")
    edit_manifest(run, edit)
    capsys.readouterr()
    assert main(["inspect", str(run), "--json"]) == 1
    assert_one_line_error(capsys.readouterr().err, "is malformed", needle)


# -- plugin results are checked where they enter ---------------------------------------------------


class _WrongResolver:
    @hookimpl(tryfirst=True)
    def grokplug_resolve_checkpoint(self, request):
        return str(request.source)  # a path string instead of a CheckpointRef


class _WrongDetector:
    @hookimpl(tryfirst=True)
    def grokplug_detect_phases(self, history, params, checkpoint_steps):
        return {"label": "grokked"}


def test_a_resolver_returning_the_wrong_type_is_named(scripted_run, pm):
    pm.register(_WrongResolver(), name="bad-resolver")
    with pytest.raises(PluginError) as info:
        grokplug.request_checkpoint(scripted_run, "grok")
    assert "plugin 'bad-resolver'" in str(info.value) and "returned str" in str(info.value)
    assert "must return a CheckpointRef or None" in str(info.value)
    assert (info.value.plugin, info.value.hook) == ("bad-resolver", "grokplug_resolve_checkpoint")


def test_a_detector_returning_the_wrong_type_is_named(scripted_run, pm):
    pm.register(_WrongDetector(), name="bad-detector")
    with pytest.raises(PluginError) as info:
        grokplug.detect_phases(scripted_run)
    assert "plugin 'bad-detector'" in str(info.value) and "returned dict" in str(info.value)
    assert (info.value.plugin, info.value.hook) == ("bad-detector", "grokplug_detect_phases")


class _Exits:
    def __init__(self, exc: BaseException, hook: str) -> None:
        self.exc, self.hook = exc, hook

    @hookimpl
    def grokplug_before_unlearn(self, context):
        if self.hook == "before":
            raise self.exc

    @hookimpl
    def grokplug_on_unlearn_step(self, context, step, metrics):
        if self.hook == "step" and step >= 1:
            raise self.exc
        return None


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt()], ids=["SystemExit", "KeyboardInterrupt"])
@pytest.mark.parametrize("hook", ["before", "step"])
def test_a_base_exception_from_a_hook_ends_the_run_naming_the_plugin(exc, hook, memorized_preset_run, pm, capsys, tmp_path):
    before = tree_state(memorized_preset_run)
    pm.register(_Exits(exc, hook), name="exiting-plugin")
    capsys.readouterr()
    code = main(["unlearn", str(memorized_preset_run), "--method", "ga", "--start", "pre", "--target", "none",
                 "--out", str(tmp_path / "out")])
    assert code == 1
    line = assert_one_line_error(capsys.readouterr().err, "plugin 'exiting-plugin'", type(exc).__name__, "ended the run")
    assert "grokplug_before_unlearn" in line if hook == "before" else "grokplug_on_unlearn_step" in line
    assert tree_state(memorized_preset_run) == before and not (tmp_path / "out").exists()


class _Answers:
    def __init__(self, answer) -> None:
        self.answer = answer

    @hookimpl
    def grokplug_on_unlearn_step(self, context, step, metrics):
        return self.answer


@pytest.mark.parametrize("answer", ["stop", 1, 0.0, {"stop": True}])
def test_an_undocumented_on_unlearn_step_answer_is_an_error_not_a_stop(answer, memorized_preset_run, pm):
    pm.register(_Answers(answer), name="chatty-plugin")
    with pytest.raises(PluginError) as info:
        grokplug.unlearn("ga", source=memorized_preset_run, start="pre", target="none", hparams={"epochs": 1})
    assert "plugin 'chatty-plugin'" in str(info.value) and "True (stop), False or None (continue)" in str(info.value)
    assert info.value.hook == "grokplug_on_unlearn_step"


def test_documented_on_unlearn_step_answers_still_work(memorized_preset_run, pm):
    pm.register(_Answers(True), name="stopper")
    result = grokplug.unlearn("ga", source=memorized_preset_run, start="pre", target="none", hparams={"epochs": 1})
    assert result.stopped_early and result.total_steps <= 1  # asked at step 0; without it, epochs=1 runs more
    pm.unregister(name="stopper")
    assert grokplug.unlearn("ga", source=memorized_preset_run, start="pre", target="none",
                            hparams={"epochs": 1}).total_steps > 1


@pytest.mark.parametrize("name", ["bad\nname", "../escape", "a/b", "", " lead", ".hidden", "x" * 65])
def test_registered_names_follow_one_pattern(name, pm, capsys):
    class Plugin:
        @hookimpl
        def grokplug_register_methods(self, register):
            register(name, object())

    pm.register(Plugin(), name="odd-names")
    with pytest.raises(PluginError, match=r"invalid name .*match \[A-Za-z0-9\]") as info:
        pm.methods  # noqa: B018
    assert info.value.plugin == "odd-names" and "\n" not in str(info.value)


def test_figure_and_cache_names_from_plugins_are_sanitised(tmp_path):
    from grokplug._paths import is_within, safe_filename
    from grokplug.compare._matrix import CellSpec

    for hostile in ("../../etc/x", "a/b", "..", ".hidden", "a\nb", "/abs", "", "\x00"):
        for name in (f"fig1b_gap_{safe_filename(hostile)}.png", f"{CellSpec(hostile, 'pre', 0, 0.15).key}.json"):
            assert "/" not in name and "\n" not in name and not name.startswith(".")
            assert is_within(tmp_path / name, tmp_path) and (tmp_path / name).parent == tmp_path


# -- compare publishes its outputs as one unit ------------------------------------------------------


def test_compare_outputs_are_published_as_one_unit(memorized_preset_run, tmp_path, monkeypatch):
    from grokplug import _atomic
    from grokplug.compare import _report, compare
    from grokplug.errors import GrokplugError

    out = tmp_path / "cmp"
    compare(memorized_preset_run, ["ssd"], seeds=1, forget_rates=(0.2,), out=out, n_boot=20, fallback="final", progress=False)
    first = {name: (out / name).read_bytes() for name in ("results.json", "results.csv", "results.md")}
    real_atomic_path = _atomic.atomic_path

    @contextlib.contextmanager
    def disk_full_on_the_md(target):  # the last of the three files to be written
        with real_atomic_path(target) as tmp:
            if Path(target).name == "results.md":
                raise OSError(errno.ENOSPC, "No space left on device")
            yield tmp

    monkeypatch.setattr(_atomic, "atomic_path", disk_full_on_the_md)
    monkeypatch.setattr(_report, "atomic_path", disk_full_on_the_md, raising=False)
    with pytest.raises(GrokplugError, match="the disk is full"):
        compare(memorized_preset_run, ["ssd"], seeds=1, forget_rates=(0.2,), out=out, n_boot=30, fallback="final",
                progress=False)
    assert {name: (out / name).read_bytes() for name in first} == first
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
