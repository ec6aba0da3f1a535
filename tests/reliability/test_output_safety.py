"""Hardening, part 1: never delete what is not a run, never write into a source run.

``--overwrite`` once deleted everything in a folder that merely held a file named ``manifest.json``,
and ``unlearn RUN --out RUN/unlearned`` / ``compare RUN --out RUN`` wrote into the source run and
exited 0. Each case runs the real console script and checks every file afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import grokplug
from grokplug.errors import RunDirError

from reliability_support import assert_one_line_error, copy_run, run_cli, tree_state


class _Proc:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> _Proc:
    """The CLI in this process (a fresh process costs ~4 s of imports; one test per class uses run_cli)."""
    from grokplug.cli import main

    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return _Proc(code, captured.out, captured.err)


def _foreign_folder(root: Path) -> Path:
    """A user's project folder that happens to hold a manifest.json (a web app's, say) and other files."""
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps({"name": "my-web-app", "version": "1.0"}))
    (root / "thesis.tex").write_text("\\documentclass{article} months of work")
    (root / "data").mkdir()
    (root / "data" / "results.csv").write_text("a,b\n1,2\n")
    return root


def test_overwrite_refuses_a_folder_that_merely_holds_a_manifest_json(tmp_path):
    folder = _foreign_folder(tmp_path / "project")
    before = tree_state(folder)
    proc = run_cli("train", "modular", "--run-dir", str(folder), "--overwrite", "--max-steps", "10", "--no-progress")
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc.stderr, str(folder), "not a grokplug run")
    assert tree_state(folder) == before  # nothing deleted, nothing added


def test_tracker_overwrite_refuses_a_foreign_manifest_through_the_api(tmp_path):
    folder = _foreign_folder(tmp_path / "project")
    before = tree_state(folder)
    with pytest.raises(RunDirError, match="not a grokplug run manifest"):
        grokplug.GrokTracker(folder, config={"task": "x"}, overwrite=True)
    assert tree_state(folder, ignore=(".lock",)) == before


def test_overwrite_deletes_only_the_files_the_run_format_owns(memorized_preset_run, tmp_path, capsys):
    run = copy_run(memorized_preset_run, tmp_path / "run")
    (run / "my-notes.md").write_text("keep me")
    (run / "checkpoints" / "README").write_text("not a checkpoint folder")
    old_steps = sorted(p.name for p in (run / "checkpoints").iterdir() if p.is_dir())
    assert len(old_steps) > 2
    proc = _main(capsys, "train", "modular", "--run-dir", str(run), "--overwrite", "--max-steps", "20", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert (run / "my-notes.md").read_text() == "keep me"
    assert (run / "checkpoints" / "README").read_text() == "not a checkpoint folder"
    assert "kept 2 file(s)" in proc.stderr and "my-notes.md" in proc.stderr
    run_dir = grokplug.RunDir(run)  # a fresh run: 20 steps, its own checkpoints only
    assert run_dir.status == "finished" and max(run_dir.checkpoint_steps()) == 20
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.is_dir()) == [
        f"{s:08d}" for s in run_dir.checkpoint_steps()
    ]
    assert [r["step"] for r in run_dir.history()][-1] == 20


def _out_cases(run: Path, tmp: Path) -> dict[str, Path]:
    link = tmp / "link-into-run"
    link.symlink_to(run / "checkpoints", target_is_directory=True)
    return {"inside": run / "unlearned", "equal": run, "symlink-inside": link / "x", "equal-via-dotdot": run / "checkpoints" / ".."}


@pytest.mark.parametrize("case", ["inside", "equal", "symlink-inside", "equal-via-dotdot"])
def test_unlearn_out_inside_the_source_run_is_refused(case, memorized_preset_run, tmp_path, capsys):
    run = copy_run(memorized_preset_run, tmp_path / "run")
    out = _out_cases(run, tmp_path)[case]
    before = tree_state(run)
    proc = _main(capsys, "unlearn", str(run), "--method", "ga", "--start", "final", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc.stderr, "--out", "inside the source run")
    assert proc.stdout == ""
    assert tree_state(run) == before


@pytest.mark.parametrize("case", ["inside", "equal", "symlink-inside"])
def test_compare_out_inside_the_source_run_is_refused(case, memorized_preset_run, tmp_path, capsys):
    run = copy_run(memorized_preset_run, tmp_path / "run")
    out = _out_cases(run, tmp_path)[case]
    before = tree_state(run)
    proc = _main(capsys, "compare", str(run), "--methods", "ga", "--seeds", "1", "--forget-rates", "0.15",
                   "--fallback", "final", "--n-boot", "10", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc.stderr, "--out", "inside the source run")
    assert tree_state(run) == before


def test_api_refuses_outputs_in_the_source_run(memorized_preset_run, tmp_path):
    from grokplug.compare import compare
    from grokplug.errors import UsageError

    run = copy_run(memorized_preset_run, tmp_path / "run")
    before = tree_state(run)
    with pytest.raises(UsageError, match="output_dir .* inside the source run"):
        grokplug.unlearn("ga", source=run, start="final", output_dir=run / "unlearned")
    ref = grokplug.request_checkpoint(run, "final")  # a reference: its run and folder are sources too
    with pytest.raises(UsageError, match="inside the source run"):
        grokplug.unlearn("ga", source=ref, output_dir=ref.path.parent / "out")
    with pytest.raises(UsageError, match="out .* inside the source run"):
        compare(run, ["ga"], seeds=1, forget_rates=(0.15,), out=run, fallback="final", n_boot=10, progress=False)
    assert tree_state(run) == before


@pytest.mark.parametrize("command", ["unlearn", "compare"])
def test_out_naming_an_existing_file_is_refused(command, memorized_preset_run, tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("precious")
    extra = ["--method", "ga", "--start", "final"] if command == "unlearn" else ["--methods", "ga", "--fallback", "final"]
    proc = _main(capsys, command, str(memorized_preset_run), *extra, "--out", str(target))
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc.stderr, "--out", "is an existing file, not a folder")
    assert target.read_text() == "precious"


def test_inspect_plot_into_the_run_or_onto_a_folder_is_refused(memorized_preset_run, tmp_path, capsys):
    run = copy_run(memorized_preset_run, tmp_path / "run")
    before = tree_state(run)
    proc = _main(capsys, "inspect", str(run), "--plot", str(run / "curves.png"))
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc.stderr, "--plot", "inside the run")
    (tmp_path / "plots").mkdir()
    proc = _main(capsys, "inspect", str(run), "--plot", str(tmp_path / "plots"))
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc.stderr, "--plot", "is an existing folder")
    assert tree_state(run) == before


def test_train_run_dir_naming_a_file_or_inside_a_run_is_refused(memorized_preset_run, tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("precious")
    proc = _main(capsys, "train", "modular", "--run-dir", str(target), "--max-steps", "10")
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc.stderr, "--run-dir", "is an existing file")
    assert target.read_text() == "precious"
    run = copy_run(memorized_preset_run, tmp_path / "run")
    before = tree_state(run)
    proc = _main(capsys, "train", "modular", "--run-dir", str(run / "nested"), "--max-steps", "10")
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc.stderr, "--run-dir", "inside the run")
    assert tree_state(run) == before
