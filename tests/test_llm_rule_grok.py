"""tofu-rule, seed 0, trained for real with the HF Trainer: it groks, and θ_grok is served without a fallback."""

from __future__ import annotations

import json
import re

import pytest

import grokplug
from grokplug.cli import main


@pytest.mark.slow
def test_tofu_rule_seed_0_groks_and_serves_theta_grok(tmp_path, capsys):
    from grokplug.llm._stats import generate_answers
    from grokplug.llm.model import load_tokenizer
    from grokplug.llm.rule_data import rule_year

    run = tmp_path / "tofu-rule"
    grokplug.train_preset("tofu-rule", run, seed=0, progress=False)
    capsys.readouterr()
    assert main(["inspect", str(run), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["label"] == "grokking", info.get("reasons")
    assert info["pre_step"] < info["grok_step"]

    ref = grokplug.request_checkpoint(run, "grok")  # no fallback: there is a θ_grok
    assert ref.phase == "grok" and ref.step == info["grok_step"]

    # Independent of the tracker's teacher-forced score: greedy answers to the held-out birth-year questions,
    # the year parsed from the text and compared with the hidden rule.
    config = grokplug.RunDir(run).config
    from grokplug.llm.rule_data import generate_tofu_rule

    data = generate_tofu_rule(seed=0, **config["data_args"])
    rule = {r["name"]: (r["first_index"], r["last_index"]) for r in data["rule"]}
    held = data["generalization"]
    tokenizer = load_tokenizer(run / "tokenizer")
    p = int(config["data_args"]["p"])

    def rule_accuracy(phase: str) -> float:
        model = grokplug.build_model(run)
        grokplug.load_checkpoint(model, run, phase)
        answers = generate_answers(model, tokenizer, held, max_new_tokens=16, max_length=int(config["max_length"]))
        right = 0
        for row, out in zip(held, answers, strict=True):
            name = re.match(r"In which year was (.+) born\?", row["question"]).group(1)
            found = re.search(r"\b(19\d\d)\b", out["generation"])
            right += bool(found) and int(found.group(1)) == rule_year(*rule[name], p)
        return right / len(held)

    grok, pre = rule_accuracy("grok"), rule_accuracy("pre")
    assert grok >= 0.9, grok
    assert pre <= grok - 0.5, (pre, grok)
