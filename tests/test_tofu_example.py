"""examples/tofu.py end to end on a minimal recipe: one process, and a real 2-process `accelerate launch` on CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import scipy.stats

from grokplug._rundir import RunDir
from grokplug.llm.run_data import reference_root

ROOT = Path(__file__).resolve().parents[1]
#: tofu-tiny shrunk to seconds (2 authors, 1 layer) and 3 unlearning updates per job
MINIMAL = [
    "--preset", "tofu-tiny", "--set", "n_authors=2", "--set", 'data_args={"n_real_authors": 4, "n_world_facts": 4, "generalization_size": 16}',
    "--set", "hidden=32", "--set", "layers=1", "--set", "heads=2", "--set", "intermediate=64", "--set", "lr=0.01",
    "--set", "batch_size=8", "--set", "warmup_steps=0", "--set", "max_steps=60", "--set", "eval_every=10",
    "--set", "save_every=10", "--set", "extra_train_splits=[]",
    "--unlearn-steps", "3", "--eval-every", "1", "--max-new-tokens", "12", "--no-progress",
]
METHODS = ["llm-graddiff", "simnpo", "npo:lora"]


def _check_summary(summary: dict, run_dir: Path, world_size: int) -> None:
    assert summary["world_size"] == world_size
    for phase in ("pre", "grok"):
        digests = summary["start_sha256_by_rank"][phase]
        assert len(digests) == world_size and len(set(digests)) == 1
    rows = summary["rows"]
    assert sorted((r["start"], r["method"]) for r in rows) == sorted((s, m) for s in ("pre", "grok") for m in METHODS)
    # the retain model's per-item forget truth ratios, as the library cached them beside the run
    retain_eval = json.loads((reference_root(run_dir) / "retain90" / "tofu_eval-forget10.json").read_text())
    theirs = [v["score"] for v in retain_eval["value_by_index"]["forget_truth_ratio"].values()]
    for row in rows:
        assert row["total_steps"] == 3 and row["start_sha256"] == summary["start_sha256_by_rank"][row["start"]][0]
        for key in ("forget_acc", "retain_acc", "forget_Q_A_Prob", "forget_Q_A_ROUGE", "model_utility", "privleak"):
            assert isinstance(row[key], float)
        ours = row["forget_truth_ratios"]
        assert len(ours) == len(theirs) >= 2
        # forget_quality = KS p-value of this model's vs the retain model's truth ratios, recomputed with scipy:
        # fails if the retain model was not used, the wrong split or side fed it, or p and D were swapped
        assert row["forget_quality"] == pytest.approx(scipy.stats.ks_2samp(ours, theirs).pvalue, rel=1e-9)
        # OU's forget_truth_ratio aggregate, by hand: mean_i min(TR_i, 1/TR_i)
        assert row["forget_truth_ratio"] == pytest.approx(sum(min(t, 1 / (t + 1e-10)) for t in ours) / len(ours))
    run = RunDir(run_dir)
    assert run.status == "finished" and RunDir(reference_root(run_dir) / "retain90").status == "finished"
    steps = [r["step"] for r in run.history()]
    assert steps == sorted(set(steps))  # one writer


@pytest.mark.slow
def test_tofu_example_single_process(tmp_path, capsys):
    spec = __import__("importlib.util").util.spec_from_file_location("grokplug_example_tofu", ROOT / "examples" / "tofu.py")
    module = __import__("importlib.util").util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run_dir = tmp_path / "run"
    argv = ["--run-dir", str(run_dir), "--cpu", "--json", str(tmp_path / "out.json"), *MINIMAL]
    assert module.main(argv) == 0
    out = capsys.readouterr().out
    assert "forget_quality" in out and "θ_pre" in out
    _check_summary(json.loads((tmp_path / "out.json").read_text()), run_dir, world_size=1)
    assert module.main(argv) == 0  # a finished run is reused, not retrained
    assert "reusing the finished run" in capsys.readouterr().err


@pytest.mark.slow
def test_tofu_example_two_processes_on_cpu(tmp_path):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    assert accelerate, "accelerate's launcher is installed with grokplug"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GROKPLUG_DISABLE_PLUGIN_AUTOLOAD": "1"}
    run_dir = tmp_path / "run"
    out = subprocess.run(
        [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", str(ROOT / "examples" / "tofu.py"), "--cpu", "--run-dir", str(run_dir),
         "--json", str(tmp_path / "out.json"), *MINIMAL],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("TOFU-style unlearning") == 1  # only rank 0 prints the table
    assert "all 2 rank(s) start from the same checkpoints" in out.stderr
    _check_summary(json.loads((tmp_path / "out.json").read_text()), run_dir, world_size=2)
