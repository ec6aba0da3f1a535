"""Hardening, part 2: one boundary for every value.

Out-of-range or malformed values given to the CLI or the public API are refused before any work,
with one line naming the argument and exit code 2; nothing is written and the source is unchanged.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

import grokplug
from grokplug.cli import main
from grokplug.errors import UsageError

from reliability_support import assert_one_line_error, copy_run, run_cli, tree_state

# (argv after the run dir, needles in the one error line)
UNLEARN_CASES = {
    "seed-negative": (["--method", "ga", "--seed", "-1"], ["--seed", "between 0 and 4294967295, got -1"]),
    "seed-huge": (["--method", "ga", "--seed", str(2**40)], ["--seed", f"got {2**40}"]),
    "set-not-a-number": (["--method", "ga", "--set", "lr=abc"], ["--set lr (method 'ga')", "finite number, got 'abc'"]),
    "set-negative-lr": (["--method", "ga", "--set", "lr=-1"], ["--set lr", "must be positive, got -1"]),
    "set-nan-lr": (["--method", "ga", "--set", "lr=NaN"], ["--set lr", "finite number, got nan"]),
    "set-negative-epochs": (["--method", "ga", "--set", "epochs=-3"], ["--set epochs", "must be positive, got -3"]),
    "set-fractional-epochs": (["--method", "ga", "--set", "epochs=1.5"], ["--set epochs", "must be an integer, got 1.5"]),
    "set-zero-max-steps": (["--method", "ga", "--set", "max_steps=0"], ["--set max_steps", "must be positive, got 0"]),
    "set-momentum-above-1": (["--method", "ft", "--set", "momentum=3"], ["--set momentum", "must lie in [0, 1], got 3"]),
    "set-bad-strength": (["--method", "ssd", "--set", "selection_weighting=-2"], ["--set selection_weighting", "finite positive"]),
    "sweep-nan-inf": (["--method", "ssd", "--sweep", "nan,inf"], ["--sweep strength", "finite positive number, got nan"]),
    "sweep-negative": (["--method", "ssd", "--sweep", "1,-5"], ["--sweep strength", "got -5.0"]),
    "retain-empty": (["--method", "ga", "--start", "final", "--forget-rate", "0.9999"], ["the retain set is empty", "--forget-rate"]),
    "fallback-unknown": (["--method", "ga", "--fallback", "xyz"], ["unknown fallback 'xyz'", "pre, final, best"]),
}


@pytest.mark.parametrize("case", list(UNLEARN_CASES))
def test_unlearn_values_are_refused_on_one_line_exit_2(case, memorized_preset_run, capsys, tmp_path):
    argv, needles = UNLEARN_CASES[case]
    before = tree_state(memorized_preset_run)
    capsys.readouterr()
    code = main(["unlearn", str(memorized_preset_run), *argv, "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.out == ""
    assert_one_line_error(captured.err, *needles)
    assert tree_state(memorized_preset_run) == before and not (tmp_path / "out").exists()


COMPARE_CASES = {
    "seeds-negative": (["--seeds", "0,-1"], ["each of --seeds", "got -1"]),
    "seeds-count-zero": (["--seeds", "0"], ["--seeds (a count)", "positive integer, got 0"]),
    "bootstrap-seed": (["--bootstrap-seed", "-5"], ["--bootstrap-seed", "got -5"]),
    "n-boot-zero": (["--n-boot", "0"], ["--n-boot", "positive integer, got 0"]),
    "set-typed": (["--set", "ga.epochs=2.5"], ["--set ga.epochs (method 'ga')", "must be an integer, got 2.5"]),
}


@pytest.mark.parametrize("case", list(COMPARE_CASES))
def test_compare_values_are_refused_on_one_line_exit_2(case, memorized_preset_run, capsys, tmp_path):
    argv, needles = COMPARE_CASES[case]
    capsys.readouterr()
    code = main(["compare", str(memorized_preset_run), "--methods", "ga", "--fallback", "final", *argv,
                 "--out", str(tmp_path / "cmp")])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert_one_line_error(captured.err, *needles)
    assert not (tmp_path / "cmp").exists()


def test_train_values_are_refused(tmp_path, capsys):
    for argv, needle in ((["--seed", "-3"], "--seed"), (["--max-steps", "0"], "--max-steps must be a positive integer")):
        capsys.readouterr()
        assert main(["train", "modular", "--run-dir", str(tmp_path / "r"), *argv]) == 2
        assert_one_line_error(capsys.readouterr().err, needle)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("command", ["unlearn", "inspect", "compare"])
def test_a_missing_run_dir_is_a_usage_error_everywhere(command, tmp_path):
    extra = ["--method", "ga"] if command == "unlearn" else []
    proc = run_cli(command, str(tmp_path / "no-such-run"), *extra, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc.stderr, "no-such-run")


def test_compare_dot_in_a_folder_that_is_not_a_run(tmp_path):
    proc = run_cli("compare", ".", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc.stderr, "no grokplug run directory at .")
    assert list(tmp_path.iterdir()) == []


def test_the_api_checks_the_same_values(memorized_preset_run):
    from grokplug.compare import compare

    cases = [
        (lambda: grokplug.unlearn("ga", source=memorized_preset_run, start="final", seed=-1), "seed must be an integer"),
        (lambda: grokplug.unlearn("ga", source=memorized_preset_run, start="final", hparams={"epochs": 1.5}),
         "hparams['epochs'] (method 'ga') must be an integer, got 1.5"),
        (lambda: grokplug.unlearn("ga", source=memorized_preset_run, start="final", hparams={"lr": float("inf")}),
         "hparams['lr'] (method 'ga') must be a finite number"),
        (lambda: grokplug.sweep_strength("ssd", [1.0, math.nan], source=memorized_preset_run, start="final"),
         "sweep strength must be a finite positive number, got nan"),
        (lambda: grokplug.sweep_strength("ssd", [], source=memorized_preset_run, start="final"), "at least one"),
        (lambda: compare(memorized_preset_run, ["ga"], seeds=[2**33], fallback="final"), "each of seeds"),
        (lambda: compare(memorized_preset_run, ["ga"], seeds=1, fallback="final", hparams={"ga": {"lr": -1}}),
         "hparams['ga']['lr'] (method 'ga') must be positive"),
        (lambda: grokplug.train_preset("modular", "/nonexistent/never-created", seed=-2), "seed must be an integer"),
    ]
    for call, needle in cases:
        with pytest.raises(UsageError) as info:
            call()
        assert needle in str(info.value), str(info.value)


def test_sweep_json_is_valid_json_and_only_finite_positive_strengths_run(memorized_preset_run, capsys):
    capsys.readouterr()
    assert main(["unlearn", str(memorized_preset_run), "--method", "ssd", "--start", "final", "--sweep", "0.5,4", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)  # json.loads accepts NaN; the check is that none is printed
    assert [p["strength"] for p in info["points"]] == [0.5, 4.0]
    assert "NaN" not in json.dumps(info) and "Infinity" not in json.dumps(info)


# -- the tracker ----------------------------------------------------------------------------------


def test_log_eval_refuses_non_finite_metrics_and_steps_that_do_not_increase(tmp_path):
    model = torch.nn.Linear(4, 3)
    run = tmp_path / "run"
    tracker = grokplug.GrokTracker(run, config={"task": "t"}, seed=0, async_save=False)
    with tracker:
        tracker.log_eval(0, train_acc=0.1, val_acc=0.1, model=model)
        tracker.log_eval(100, train_acc=0.9, val_acc=0.2, model=model)
        saved = (run / "checkpoints" / "00000100" / "model.safetensors").read_bytes()
        for bad, needle in ((dict(train_acc=math.nan), "'train_acc' must be a finite number, got nan"),
                            (dict(val_loss=math.inf), "'val_loss' must be a finite number, got inf"),
                            (dict(val_acc="0.5"), "'val_acc' must be a finite number, got '0.5'")):
            kwargs = {"train_acc": 0.9, "val_acc": 0.3, **bad}
            with pytest.raises(UsageError, match=needle):
                tracker.log_eval(200, **kwargs)
        with torch.no_grad():
            model.weight.add_(1.0)
        for step in (50, 100):  # backwards, then the same step again: either would replace checkpoint 100
            with pytest.raises(UsageError, match=f"step {step} is not after the last logged step 100"):
                tracker.log_eval(step, train_acc=1.0, val_acc=0.9, model=model)
        with pytest.raises(UsageError, match="non-negative integer, got 1.5"):
            tracker.log_eval(1.5, train_acc=1.0, val_acc=0.9)
        tracker.log_eval(200, train_acc=1.0, val_acc=0.3, model=model)
    assert (run / "checkpoints" / "00000100" / "model.safetensors").read_bytes() == saved
    assert [r["step"] for r in grokplug.RunDir(run).history()] == [0, 100, 200]


# -- checkpoints ----------------------------------------------------------------------------------


def test_int_weights_are_not_cast_into_a_float_model(scripted_run, tmp_path):
    from safetensors.torch import save_file

    from grokplug._atomic import sha256_file
    from grokplug.errors import ArchitectureMismatchError

    from reliability_support import edit_manifest

    run = copy_run(scripted_run, tmp_path / "run")
    ref = grokplug.request_checkpoint(run, "grok")
    save_file({"weight": torch.ones(3, 4, dtype=torch.int64), "bias": torch.zeros(3)}, str(ref.path))
    digest = sha256_file(ref.path)  # the manifest agrees: only the dtype check can stop it
    edit_manifest(run, lambda m: m["checkpoints"][str(ref.step)].update(sha256=digest))
    model = torch.nn.Linear(4, 3)
    before = model.weight.detach().clone()
    with pytest.raises(ArchitectureMismatchError, match=r"dtype mismatch \(1\): weight: checkpoint torch.int64 vs model torch.float32"):
        grokplug.load_checkpoint(model, run, "grok")
    assert torch.equal(model.weight, before)


def test_a_safetensors_file_whose_header_length_starts_with_0x80_is_not_taken_for_a_pickle(tmp_path):
    """Found by the dtype test: a 128-byte header starts the file with 0x80, the pickle protocol marker."""
    from safetensors.torch import save_file

    from grokplug._store import load_weights

    path = tmp_path / "w.safetensors"
    for pad in range(300):  # header lengths vary with the metadata; stop at the one that starts with 0x80
        save_file({"w": torch.arange(3.0)}, str(path), metadata={"p": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    assert torch.equal(load_weights(path)["w"], torch.arange(3.0))
