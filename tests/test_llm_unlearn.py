"""tofu-tiny trained with the HF Trainer + tracker, and LLM unlearning sessions from θ_pre / θ_grok."""

from __future__ import annotations

import json

import pytest
import torch

import grokplug
from grokplug._atomic import sha256_file
from grokplug._resolve import build_model
from grokplug._rundir import RunDir
from grokplug._train import train_preset
from grokplug.errors import UsageError

#: tofu-tiny shrunk to seconds: 2 authors (40 QA), a 1-layer model, small evaluation splits
TINY = {
    "n_authors": 2,
    "data_args": {"n_real_authors": 4, "n_world_facts": 4, "generalization_size": 16},
    "hidden": 32, "layers": 1, "heads": 2, "intermediate": 64,
    "lr": 1e-2, "batch_size": 8, "warmup_steps": 0, "max_steps": 75, "eval_every": 10, "save_every": 10,
}
EVAL = {"max_new_tokens": 12, "batch_size": 16}
SUMMARY = ("forget_quality", "model_utility", "forget_truth_ratio", "forget_Q_A_Prob", "forget_Q_A_ROUGE",
           "extraction_strength", "privleak")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from grokplug.plugins import get_plugin_manager, reset_plugin_manager

    reset_plugin_manager()
    get_plugin_manager()
    path = tmp_path_factory.mktemp("tofu") / "run"
    report = train_preset("tofu-tiny", path, seed=0, overrides=TINY, progress=False)
    return path, report


def _hashes(run_dir):
    return {p: sha256_file(p) for p in sorted((run_dir / "checkpoints").rglob("*.safetensors"))}


def test_tofu_tiny_trains_into_a_tracked_run(tiny_run):
    path, report = tiny_run
    run = RunDir(path)
    assert run.status == "finished" and run.config["preset"] == "tofu-tiny"
    history = run.history()
    steps = [r["step"] for r in history]
    assert steps == [0, 10, 20, 30, 40, 50, 60, 70, 75]  # every eval_every steps, and the last step
    for record in history:
        assert {"train_acc", "val_acc", "train_loss", "val_loss", "train_token_acc", "val_token_acc"} <= set(record)
        assert 0.0 <= record["train_acc"] <= 1.0 and 0.0 <= record["val_acc"] <= 1.0
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 2  # the Trainer did train
    assert history[-1]["train_token_acc"] > history[0]["train_token_acc"] + 0.3
    assert run.checkpoint_steps() and all(s % 10 == 0 for s in run.checkpoint_steps())
    assert (path / "grok.json").is_file() and report.n_evals == len(history)
    assert (path / "tokenizer" / "tokenizer.json").is_file()
    model = build_model(path)  # rebuilt from the recorded config (vocab size included)
    ref = grokplug.load_checkpoint(model, path, "final")
    assert model.config.vocab_size == run.config["vocab_size"] and ref.step == max(run.checkpoint_steps())


def test_unlearn_from_pre_and_grok_keeps_the_source_intact(tiny_run, tmp_path):
    from grokplug._unlearn import result_to_dict
    from grokplug.llm.unlearn import unlearn_llm

    path, _ = tiny_run
    before = _hashes(path)
    results = {}
    for start in ("pre", "grok"):
        results[start] = unlearn_llm(
            "npo", path, start=start, fallback="final", hparams={"max_steps": 3, "learning_rate": 1e-3},
            target="frac:0.5", retain_reference_eval=None, eval_kwargs=EVAL, output_dir=tmp_path / start,
        )
    assert _hashes(path) == before  # the source checkpoints are only read
    for start, result in results.items():
        ref = grokplug.request_checkpoint(path, start, fallback="final")
        assert result.start.sha256 == ref.sha256 and result.method == "npo"
        metrics = result.metrics
        assert {"forget_acc", "retain_acc", "gen_acc", *SUMMARY} <= set(metrics)
        assert metrics["forget_quality"] is None  # no retain model given
        assert 0 <= metrics["forget_acc"] <= 1 and 0 <= metrics["model_utility"] <= 1
        assert set(SUMMARY) - {"forget_quality"} <= set(metrics["start_metrics"])
        assert result.total_steps == 3 and [p[0] for p in result.trail] == [0, 1, 2, 3]
        assert result.trail[0][1] == pytest.approx(metrics["start_metrics"]["forget_acc"])
        assert metrics["target_forget_acc"] == pytest.approx(0.5 * metrics["start_metrics"]["forget_acc"])
        saved = json.loads((tmp_path / start / "result.json").read_text())
        assert saved == json.loads(json.dumps(result_to_dict(result) | {"forget_split": "forget10", "lora": False}, default=str))
        assert (tmp_path / start / "model.safetensors").is_file() and (tmp_path / start / "tofu_eval.json").is_file()
    # NPO moved the weights; the saved model is the unlearned one
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "grok" / "model.safetensors"))
    state = results["grok"].model.state_dict()
    assert all(torch.equal(saved[k], state[k]) for k in saved)


def test_lora_unlearning_saves_an_adapter_that_reloads_onto_the_start(tiny_run, tmp_path):
    from grokplug.llm.lora import load_adapter
    from grokplug.llm.unlearn import unlearn_llm

    path, _ = tiny_run
    before = _hashes(path)
    result = unlearn_llm(
        "llm-graddiff", path, start="grok", fallback="final", lora={"r": 4}, evaluate=False,
        hparams={"max_steps": 3, "learning_rate": 1e-2}, target=None, retain_reference_eval=None,
        output_dir=tmp_path / "out",
    )
    assert _hashes(path) == before
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "out" / "model.safetensors").exists()
    fresh = build_model(path)
    grokplug.load_checkpoint(fresh, path, "grok", fallback="final")
    reloaded = load_adapter(fresh, tmp_path / "out" / "adapter").eval()
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids).logits, result.model.eval()(input_ids=ids).logits, atol=1e-6)
    start_model = build_model(path)
    grokplug.load_checkpoint(start_model, path, "grok", fallback="final")
    with torch.no_grad():  # the adapter is not a no-op: 3 GradDiff steps moved the outputs
        moved = (reloaded(input_ids=ids).logits - start_model.eval()(input_ids=ids).logits).abs().max()
    assert float(moved) > 1e-4
    assert result.total_steps == 3


def test_retain_reference_is_trained_once_and_sets_the_retrain_target(tiny_run, tmp_path):
    from grokplug.llm import retain_only_reference
    from grokplug.llm.run_data import reference_root
    from grokplug.llm.unlearn import retain_reference, unlearn_llm

    path, _ = tiny_run
    reference = retain_only_reference(path, "forget10", eval_kwargs=EVAL)
    ref_run = RunDir(reference_root(path) / "retain90")
    assert ref_run.status == "finished" and ref_run.config["train_split"] == "retain90"
    assert ref_run.config["max_steps"] == RunDir(path).config["max_steps"]  # same recipe and budget
    assert set(SUMMARY) - {"forget_quality"} <= set(reference) and "scores" in reference
    with pytest.warns(DeprecationWarning, match="use grokplug.llm.retain_only_reference"):  # the old name still works
        again = retain_reference(path, "forget10", eval_kwargs=EVAL)  # cached: not retrained
    assert again == json.loads(json.dumps(reference))
    result = unlearn_llm("llm-ga", path, start="pre", hparams={"max_steps": 2}, retain_reference_eval=reference,
                         target="retrain", eval_kwargs=EVAL, output_dir=tmp_path / "out")
    assert result.metrics["target_forget_acc"] == pytest.approx(reference["scores"]["forget_acc"])
    # forget quality = the KS-test p-value of the unlearned vs the retain model's forget truth ratios (scipy)
    import scipy.stats

    evaluation = json.loads((tmp_path / "out" / "tofu_eval.json").read_text())["final"]
    ours = [v["score"] for v in evaluation["value_by_index"]["forget_truth_ratio"].values()]
    theirs = [v["score"] for v in reference["value_by_index"]["forget_truth_ratio"].values()]
    assert result.metrics["forget_quality"] == pytest.approx(scipy.stats.ks_2samp(ours, theirs).pvalue, rel=1e-9)


def test_a_vision_method_is_refused(tiny_run):
    from grokplug.llm.unlearn import unlearn_llm

    with pytest.raises(UsageError, match="not an LLM method"):
        unlearn_llm("ga", tiny_run[0], start="pre", retain_reference_eval=None, evaluate=False)


def test_grokplug_train_cli_trains_tofu_tiny(tmp_path, capsys):
    from grokplug.cli import main

    assert main(["train", "tofu-tiny", "--run-dir", str(tmp_path / "cli"), "--max-steps", "2", "--no-progress"]) == 0
    run = RunDir(tmp_path / "cli")
    assert run.status == "finished" and [r["step"] for r in run.history()] == [0, 2]
    assert "label:" in capsys.readouterr().out


def test_grokplug_unlearn_cli_routes_llm_methods(tiny_run, tmp_path, capsys):
    from grokplug.cli import main

    path, _ = tiny_run
    before = _hashes(path)
    argv = ["unlearn", str(path), "--method", "NPO", "--start", "grok", "--fallback", "final", "--target", "frac:0.5",
            "--set", "max_steps=2", "--set", "learning_rate=0.001", "--out", str(tmp_path / "o"), "--json"]
    assert main(argv) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["method"] == "npo" and info["total_steps"] <= 2 and info["forget_split"] == "forget10"
    assert info["forget_quality"] is not None  # the retain model is trained (or reused) for the CLI path
    assert (tmp_path / "o" / "result.json").is_file() and _hashes(path) == before
