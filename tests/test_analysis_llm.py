"""θ_pre/θ_grok analysis of TOFU-style runs: the LLM domain's loss and representation against per-row loops, and
``grokplug compare TOFU_RUN --analysis`` end to end, its numbers recomputed independently from the checkpoints."""

from __future__ import annotations

import json
import math

import pytest
import torch
from support_llm import PAD, qa_item, tiny_llama

from grokplug.cli import main
from grokplug.llm.analysis import answer_token_loss, eager_attention, pooled_answer_states
from grokplug.llm.qa import DataCollatorForSupervisedDataset


class _Tok:
    pad_token_id = PAD


def _rows(n: int = 5) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(3)
    return [qa_item(gen, length=5 + i, prompt=2 + i % 2) for i in range(n)]  # varied lengths: right padding


def _row_nll(model: torch.nn.Module, row: dict[str, torch.Tensor]) -> torch.Tensor:
    """One unpadded row, token by token: mean of -log p(answer token | its prefix)."""
    ids, labels = row["input_ids"], row["labels"]
    log_probs = torch.log_softmax(model(ids[None]).logits[0].double(), -1)
    terms = [-log_probs[t - 1, ids[t]] for t in range(1, len(ids)) if labels[t] != -100]
    return torch.stack(terms).mean()


def test_answer_token_loss_and_pooled_states_match_unpadded_rows() -> None:
    torch.manual_seed(0)
    model = eager_attention(tiny_llama()).double().eval()
    rows = _rows()
    batch = DataCollatorForSupervisedDataset(_Tok())(rows)
    assert batch["input_ids"].shape[1] == max(len(r["input_ids"]) for r in rows)  # padding happened
    with torch.no_grad():
        got = answer_token_loss(model(batch["input_ids"]), batch["labels"])
        expected = torch.stack([_row_nll(model, r) for r in rows]).mean()
        assert float(got) == pytest.approx(float(expected), rel=1e-10)
        pooled = pooled_answer_states(model, (batch["input_ids"], batch["labels"]))
        for i, r in enumerate(rows):
            states = model(r["input_ids"][None], output_hidden_states=True).hidden_states[-1][0]
            answer = [t - 1 for t in range(1, len(r["input_ids"])) if r["labels"][t] != -100]
            assert torch.allclose(pooled[i], states[answer].mean(0), atol=1e-10)


def _flat_grad(model: torch.nn.Module, rows: list[dict[str, torch.Tensor]]) -> torch.Tensor:
    """Mean over rows of each unpadded row's loss gradient (one backward pass per row)."""
    total = None
    for r in rows:
        grads = torch.autograd.grad(_row_nll(model, r), [p for p in model.parameters() if p.requires_grad], allow_unused=True)
        flat = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                          for g, p in zip(grads, [p for p in model.parameters() if p.requires_grad], strict=True)])
        total = flat if total is None else total + flat
    assert total is not None
    return total / len(rows)


def test_compare_analysis_on_a_tofu_run(tofu_run_dir, tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "cmp"
    argv = ["compare", str(tofu_run_dir), "--methods", "npo", "--seeds", "1", "--fallback", "final", "--set",
            "npo.max_steps=1", "--n-boot", "50", "--no-progress", "--json", "--analysis", "--out", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    results = json.loads((out / "results.json").read_text())
    analysis = results["analysis"]
    assert analysis["domain"] == "llm" and analysis["loss"] == "answer-token ce" and analysis["forget_rate"] == 0.1
    md = (out / "results.md").read_text()
    assert "## θ_pre vs θ_grok analysis" in md and "ascent harms retain" in md and "CKA(θ_pre, θ_grok)" in md

    from grokplug import build_model, load_checkpoint
    from grokplug.llm import LLMRunData

    data = LLMRunData(tofu_run_dir, "forget10")
    forget, retain = [data.forget[i] for i in range(len(data.forget))], [data.retain[i] for i in range(len(data.retain))]
    refs = {}
    for start in ("pre", "grok"):
        s = analysis["starts"][start]
        per_example = s["grad_alignment"]["per_example"]
        assert per_example["frac_ascent_harms_retain"] + per_example["frac_ascent_helps_retain"] <= 1.0
        assert per_example["n"] == min(64, len(forget))
        for value in (s["curvature"]["lambda_max"], s["curvature"]["trace"]):
            assert isinstance(value, float) and math.isfinite(value)
        model = build_model(tofu_run_dir)
        refs[start] = load_checkpoint(model, tofu_run_dir, start, fallback="final")
        # independent: accuracies through LLMRunData (attention mask, batches), losses and gradients row by row
        assert s["forget_acc"] == pytest.approx(data.score(model, "forget"), abs=1e-6)
        assert s["test_acc"] == pytest.approx(data.score(model, "generalization"), abs=1e-6)
        model = eager_attention(model).double().eval()
        g_f, g_r = _flat_grad(model, forget), _flat_grad(model, retain)
        cos = float(g_f @ g_r / (g_f.norm() * g_r.norm()))
        assert s["grad_alignment"]["cos"] == pytest.approx(cos, rel=1e-6, abs=1e-9)
        assert s["grad_alignment"]["forget_grad_norm"] == pytest.approx(float(g_f.norm()), rel=1e-6)
        assert s["grad_alignment"]["retain_grad_norm"] == pytest.approx(float(g_r.norm()), rel=1e-6)
        with torch.no_grad():
            f_losses, r_losses = [float(_row_nll(model, r)) for r in forget], [float(_row_nll(model, r)) for r in retain]
        assert s["grad_alignment"]["forget_loss"] == pytest.approx(sum(f_losses) / len(f_losses), rel=1e-8)
        assert s["grad_alignment"]["retain_loss"] == pytest.approx(sum(r_losses) / len(r_losses), rel=1e-8)
        assert s["train_loss"] == pytest.approx(sum(f_losses + r_losses) / len(f_losses + r_losses), rel=1e-8)
    if refs["pre"].sha256 == refs["grok"].sha256:  # this tiny run never grokked: θ_grok fell back to θ_pre's file
        assert all(v == pytest.approx(1.0, abs=1e-9) for v in analysis["cka_pre_vs_grok"].values())
        assert analysis["starts"]["pre"]["grad_alignment"] == analysis["starts"]["grok"]["grad_alignment"]


def test_analysis_refuses_vision_options_on_a_tofu_run(tofu_run_dir) -> None:  # noqa: ANN001
    from grokplug.analysis import analyse_run
    from grokplug.errors import UsageError

    with pytest.raises(UsageError, match="layer= is for vision runs"):
        analyse_run(tofu_run_dir, layer="model.norm", fallback="final")
    with pytest.raises(UsageError, match="forget rates 0.01, 0.05 and 0.1"):
        analyse_run(tofu_run_dir, forget_rate=0.15, fallback="final")
