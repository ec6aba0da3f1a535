"""TOFU metrics (open-unlearning definitions) on hand-computed values, and the batched statistics."""

from __future__ import annotations

import json
import math
import sys
import zlib

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F

datasets = pytest.importorskip("datasets")
pytest.importorskip("evaluate")
transformers = pytest.importorskip("transformers")

from grokplug.errors import UsageError  # noqa: E402
from grokplug.llm._stats import answer_stats, generate_answers, model_sha256  # noqa: E402
from grokplug.llm.evaluation import (  # noqa: E402
    SUMMARY_KEYS,
    UTILITY_KEYS,
    evaluate_tofu,
    generalization_score,
    load_metric,
)

LN = math.log


# ---------------------------------------------------------------- metric modules, hand-computed values
def test_probability_from_known_nlls() -> None:
    res = load_metric("tofu_probability").compute(avg_nll=[0.0, LN(2), LN(4)])
    assert res["values"] == pytest.approx([1.0, 0.5, 0.25])
    assert res["agg_value"] == pytest.approx(1.75 / 3)
    opt = load_metric("tofu_probability", "with_options").compute(avg_nll=[LN(2), 0.0],
                                                                  pert_avg_nlls=[[LN(2), LN(4)], [LN(1), LN(1)]])
    # 0.5 / (0.5 + 0.5 + 0.25) = 0.4 ; 1 / (1 + 1 + 1) = 1/3
    assert opt["values"] == pytest.approx([0.4, 1 / 3])
    assert opt["agg_value"] == pytest.approx((0.4 + 1 / 3) / 2)


def test_truth_ratio_aggregators_on_hand_numbers() -> None:
    tr = load_metric("truth_ratio")
    # item 1: P(para) = 1/2, wrong nlls (ln4, ln4) -> P = 1/4 -> TR = 0.5
    # item 2: P(para) = 1/8, wrong nlls (0, ln16): geometric mean exp(-ln4) = 1/4 -> TR = 2
    kw = {"correct_avg_nll": [LN(2), LN(8)], "wrong_avg_nlls": [[LN(4), LN(4)], [0.0, LN(16)]]}
    closer = tr.compute(**kw, aggregator="closer_to_1_better")
    assert closer["values"] == pytest.approx([0.5, 2.0])
    assert closer["agg_value"] == pytest.approx(0.5)  # mean(min(.5, 2), min(2, .5))
    assert tr.compute(**kw, aggregator="true_better")["agg_value"] == pytest.approx(0.25)  # mean(.5, max(0, -1))
    with pytest.raises(ValueError, match="aggregator"):
        tr.compute(**kw, aggregator="bogus")


def test_forget_quality_is_scipy_ks_pvalue_and_none_without_reference() -> None:
    model_tr = [0.1, 0.4, 0.35, 0.8, 0.9, 0.55]
    ref_tr = [0.6, 0.7, 0.75, 0.95, 1.2]
    res = load_metric("forget_quality").compute(truth_ratios=model_tr, reference_truth_ratios=ref_tr)
    assert res["agg_value"] == pytest.approx(scipy.stats.ks_2samp(model_tr, ref_tr).pvalue, abs=1e-12)
    assert 0 < res["agg_value"] < 1
    same = load_metric("forget_quality").compute(truth_ratios=ref_tr, reference_truth_ratios=ref_tr)
    assert same["agg_value"] == pytest.approx(1.0)
    none = load_metric("forget_quality").compute(truth_ratios=model_tr, reference_truth_ratios=None)
    assert none["agg_value"] is None and "reference" in none["note"]


def test_model_utility_is_harmonic_mean() -> None:
    mu = load_metric("model_utility")
    assert mu.compute(values=[1.0, 0.5, 0.25])["agg_value"] == pytest.approx(3 / 7)
    assert mu.compute(values=[0.5] * 9)["agg_value"] == pytest.approx(0.5)
    assert mu.compute(values=[0.9] * 8 + [0.0])["agg_value"] == 0.0


def _mia(forget_nll, holdout_nll, **kw):
    n = len(forget_nll) + len(holdout_nll)
    return load_metric("tofu_mia").compute(
        avg_nll=list(forget_nll) + list(holdout_nll), token_logprobs=kw.get("lp", [[-x] for x in forget_nll + holdout_nll]),
        texts=kw.get("texts", ["a"] * n), is_holdout=[0] * len(forget_nll) + [1] * len(holdout_nll))


def test_mia_auc_orientation_on_hand_scores() -> None:
    # forget far more likely (lower loss) than holdout -> AUC 1 (OU: "auc is 1 when forget is more likely")
    assert _mia([0.1, 0.2], [1.0, 2.0])["mia_loss"] == 1.0
    assert _mia([1.0, 2.0], [0.1, 0.2])["mia_loss"] == 0.0
    # holdout > forget in 3 of the 4 pairs: (.3>.1) (.3<.5) (.7>.1) (.7>.5)
    res = _mia([0.1, 0.5], [0.3, 0.7])
    assert res["mia_loss"] == pytest.approx(0.75)
    assert res["mia_min_k"] == pytest.approx(0.75)  # one token each: min-k score = -logprob = nll
    with pytest.raises(ValueError, match="both"):
        load_metric("tofu_mia").compute(avg_nll=[1.0], token_logprobs=[[-1.0]], texts=["a"], is_holdout=[0])


def test_zlib_and_min_k_scores_by_hand() -> None:
    module = sys.modules[type(load_metric("tofu_mia")).__module__]  # the module evaluate loaded by path
    min_k_score, zlib_score = module.min_k_score, module.zlib_score
    assert len(zlib.compress(b"a")) == 9
    assert zlib_score(2.0, "a") == pytest.approx(2 / 9)
    # zlib AUC uses nll / compressed length: same nll, longer (less compressible) holdout text -> lower score
    res = _mia([1.0], [1.0], texts=["a", "the quick brown fox jumps"])
    assert res["scores"]["zlib"] == pytest.approx([1 / 9, 1 / len(zlib.compress(b"the quick brown fox jumps"))])
    assert res["mia_zlib"] == 0.0
    # k = 0.4 of 5 tokens -> int(2.0) = 2 lowest: (-5, -4) -> 4.5
    assert min_k_score([-1.0, -2.0, -3.0, -4.0, -5.0], 0.4) == pytest.approx(4.5)
    assert min_k_score([-1.5], 0.4) == pytest.approx(1.5)  # max(1, int(0.4)) = 1 token
    assert min_k_score([], 0.4) == 0.0


def test_extraction_strength_and_exact_memorization_by_hand() -> None:
    es, em = load_metric("extraction_strength"), load_metric("exact_memorization")
    preds = [[1, 2, 3, 4], [5, 6, 7], [1, 1, 1], [1, 1, 5]]
    labels = [[9, 2, 3, 4], [5, 6, 7], [2, 2, 2], [2, 2, 5]]
    res = es.compute(predictions=preds, references=labels)
    # k=1 -> 3/4 ; full match k=0 -> 1 ; no suffix matches: OU's loop ends at k=L-1 -> 1/3 ; k=2 -> 1/3
    assert res["values"] == pytest.approx([0.75, 1.0, 1 / 3, 1 / 3])
    assert res["agg_value"] == pytest.approx((0.75 + 1 + 2 / 3) / 4)
    assert em.compute(predictions=preds, references=labels)["values"] == pytest.approx([0.75, 1.0, 0.0, 1 / 3])


def test_rouge_recall_on_hand_strings() -> None:
    r = load_metric("tofu_rouge")
    res = r.compute(predictions=["mat on the cat", "cat run"], references=["the cat sat on the mat", "the cats running"])
    # LCS("the cat sat on the mat", "mat on the cat") = 2 of 6 reference tokens; unigrams 4 of 6
    assert [v["rougeL_recall"] for v in res["values"]] == pytest.approx([1 / 3, 2 / 3])  # stemmer: cats->cat
    assert [v["rouge1_recall"] for v in res["values"]] == pytest.approx([2 / 3, 2 / 3])
    assert res["agg_value"] == res["rougeL_recall"] == pytest.approx(0.5)


def test_load_metric_is_local_and_cached() -> None:
    a = load_metric("truth_ratio")
    assert a is load_metric("truth_ratio")
    with pytest.raises(UsageError, match="unknown TOFU metric"):
        load_metric("rouge")


# ---------------------------------------------------------------- statistics on a tiny random Llama
PEOPLE = ["Anna Berg", "Tomas Vik", "Lena Holm", "Omar Sadi", "Ines Roth", "Karl Dahl", "Mira Stone", "Paul Wren"]
COLOURS = ["red", "blue", "green", "amber", "violet", "grey", "white", "black"]
CITIES = ["Oslo", "Lima", "Rome", "Kyiv", "Pune", "Nara", "Graz", "Bern"]


def _row(i: int, n_pert: int = 5) -> dict:
    p, c, t = PEOPLE[i % 8], COLOURS[i % 8], CITIES[i % 8]
    return {
        "question": f"Where was {p} born?",
        "answer": f"{p} was born in {t}, a city they love.",
        "paraphrased_answer": f"The birthplace of {p} is {t}.",
        "perturbed_answer": [f"{p} was born in {CITIES[(i + j + 1) % 8]}." for j in range(n_pert)],
        "paraphrased_question": f"What is the birthplace of {p}?",
        "colour": c,
    }


def _tofu_data() -> datasets.DatasetDict:
    def split(ids, n_pert=5, keys=None):
        rows = [_row(i, n_pert) for i in ids]
        if keys:
            rows = [{k: r[k] for k in keys} for r in rows]
        return datasets.Dataset.from_list(rows)

    return datasets.DatasetDict({
        "forget01_perturbed": split(range(0, 5)),
        "holdout01": split(range(5, 10), keys=("question", "answer")),
        "retain_perturbed": split(range(10, 14)),
        "real_authors_perturbed": split(range(14, 17), 3, keys=("question", "answer", "perturbed_answer")),
        "world_facts_perturbed": split(range(17, 20), 3, keys=("question", "answer", "perturbed_answer")),
    })


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [f"Question: {r['question']}\nAnswer: {r['answer']} {r['paraphrased_answer']} "
              + " ".join(r["perturbed_answer"]) for r in (_row(i) for i in range(20))]
    core = Tokenizer(models.BPE(unk_token="<unk>"))
    # words/punctuation with their trailing spaces, so the prompt's ids are a prefix of prompt+answer's
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\w+\s*|[^\w\s]+\s*|\s+"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<pad>", "<eos>", "<unk>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")


def _tiny_llama(tokenizer, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).float()
    with torch.no_grad():  # sharper logits than the 0.02-std init, so argmax/generation are not near-ties
        model.lm_head.weight.mul_(20)
    return model


@pytest.fixture(scope="module")
def model(tokenizer):
    return _tiny_llama(tokenizer)


def test_avg_nll_matches_manual_cross_entropy_loop(model, tokenizer) -> None:
    rows = _tofu_data()["forget01_perturbed"]
    stats = answer_stats(model, tokenizer, rows, batch_size=3)
    model.eval()
    for row, st in zip(rows, stats, strict=True):
        prompt = f"Question: {row['question']}\nAnswer: "
        ids = tokenizer(prompt + row["answer"])["input_ids"] + [tokenizer.eos_token_id]
        n_prompt = len(tokenizer(prompt)["input_ids"])
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        targets = torch.tensor(ids[n_prompt:])
        ce = F.cross_entropy(logits[n_prompt - 1:-1], targets, reduction="none")
        assert st.num_tokens == len(targets)
        assert st.avg_nll == pytest.approx(ce.mean().item(), abs=1e-5)
        assert st.prob == pytest.approx(math.exp(-ce.mean().item()), rel=1e-5)
        # token-wise statistics leave the final (EOS) label out, as OU's tokenwise_logprobs
        np.testing.assert_allclose(st.token_logprobs, -ce[:-1].numpy(), atol=1e-5)
        assert st.labels.tolist() == ids[n_prompt:-1]
        assert st.argmax.tolist() == logits[n_prompt - 1:-2].argmax(-1).tolist()
        assert st.text == row["answer"]
    assert model.training is False  # our call left it as we set it


def test_batched_equals_per_sample_and_mode_restored(model, tokenizer) -> None:
    rows = _tofu_data()["forget01_perturbed"]
    model.train()
    for key in ("answer", "perturbed_answer"):
        batched = answer_stats(model, tokenizer, rows, answer_key=key, batch_size=4)
        single = answer_stats(model, tokenizer, rows, answer_key=key, per_sample=True)
        flat_b = [s for x in batched for s in (x if isinstance(x, list) else [x])]
        flat_s = [s for x in single for s in (x if isinstance(x, list) else [x])]
        assert len(flat_b) == len(flat_s) == len(rows) * (5 if key == "perturbed_answer" else 1)
        for b, s in zip(flat_b, flat_s, strict=True):
            assert b.avg_nll == pytest.approx(s.avg_nll, abs=1e-5)
            np.testing.assert_allclose(b.token_logprobs, s.token_logprobs, atol=1e-5)
            assert b.argmax.tolist() == s.argmax.tolist() and b.labels.tolist() == s.labels.tolist()
    gb = generate_answers(model, tokenizer, rows, batch_size=4, max_new_tokens=6)
    gs = generate_answers(model, tokenizer, rows, per_sample=True, max_new_tokens=6)
    assert gb == gs
    assert [g["ground_truth"] for g in gb] == list(rows["answer"])
    assert all(g["input"].startswith("Question: ") for g in gb)
    assert model.training is True


def test_generation_stops_at_eos_and_runs_max_new_tokens_otherwise(tokenizer) -> None:
    rows = _tofu_data()["forget01_perturbed"]
    model = _tiny_llama(tokenizer)
    hidden = model.config.hidden_size
    model.lm_head = torch.nn.Linear(hidden, len(tokenizer), bias=True)  # logits = bias: a fixed greedy token
    torch.nn.init.zeros_(model.lm_head.weight)
    with torch.no_grad():
        model.lm_head.bias.zero_()
        model.lm_head.bias[tokenizer.eos_token_id] = 5.0
    assert [g["generation"] for g in generate_answers(model, tokenizer, rows, max_new_tokens=5)] == [""] * 5
    anna = tokenizer.convert_tokens_to_ids("AnnaĠ")
    with torch.no_grad():
        model.lm_head.bias.zero_()
        model.lm_head.bias[anna] = 5.0
    gens = generate_answers(model, tokenizer, rows, max_new_tokens=3)
    assert [g["generation"] for g in gens] == ["Anna Anna Anna"] * 5


def test_evaluate_tofu_summary_reference_and_cache(model, tokenizer, tmp_path) -> None:
    data = _tofu_data()
    kw = {"forget_split": "forget01", "holdout_split": "holdout01", "batch_size": 8, "max_new_tokens": 4,
          "cache_dir": tmp_path}
    res = evaluate_tofu(model, tokenizer, data, **kw)
    for key in (*SUMMARY_KEYS, *UTILITY_KEYS, "mia_loss", "mia_zlib", "mia_min_k", "exact_memorization"):
        assert key in res
    assert res["forget_quality"] is None and any("forget_quality" in n for n in res["notes"])
    assert 0 <= res["forget_Q_A_Prob"] <= 1 and 0 <= res["forget_truth_ratio"] <= 1
    assert 0 <= res["model_utility"] <= 1 and 0 <= res["mia_min_k"] <= 1
    # privleak and model_utility against hand cases: test_tofu_metric_wiring_each_split_and_field_feeds_its_metric
    assert len(res["value_by_index"]["forget_truth_ratio"]) == 5
    prov = res["provenance"]
    assert prov["cache"] == "miss" and prov["model_sha256"] == model_sha256(model)
    assert prov["forget_split"] == "forget01_perturbed" and prov["seed"] == 0
    assert set(prov["metric_modules"]) >= {"truth_ratio", "tofu_rouge"}

    again = evaluate_tofu(model, tokenizer, data, **{**kw, "batch_size": 3})  # batch size is not in the key
    assert again["provenance"]["cache"] == "hit" and again["forget_Q_A_Prob"] == res["forget_Q_A_Prob"]

    # a retain model's evaluation serves as the reference for forget_quality and privleak
    other = _tiny_llama(tokenizer, seed=1)
    ref = evaluate_tofu(other, tokenizer, data, **{**kw, "cache_dir": None})
    with_ref = evaluate_tofu(model, tokenizer, data, retain_reference=ref, **kw)
    assert with_ref["provenance"]["cache"] == "miss"  # the reference is part of the key
    ours = [v["score"] for v in res["value_by_index"]["forget_truth_ratio"].values()]
    theirs = [v["score"] for v in ref["value_by_index"]["forget_truth_ratio"].values()]
    assert with_ref["forget_quality"] == pytest.approx(scipy.stats.ks_2samp(ours, theirs).pvalue)
    r = 1 - ref["mia_min_k"]
    assert with_ref["privleak"] == pytest.approx(((1 - res["mia_min_k"]) - r) / (r + 1e-10) * 100)
    # the same reference as a JSON file, or in OU's TOFU_EVAL.json layout, parses to the same values (cache hit)
    ref_file = tmp_path / "retain_eval.json"
    ref_file.write_text(json.dumps(ref))
    ou_layout = {"forget_truth_ratio": {"agg_value": ref["forget_truth_ratio"],
                                        "value_by_index": ref["value_by_index"]["forget_truth_ratio"]},
                 "mia_min_k": {"agg_value": ref["mia_min_k"]}}
    for form in (str(ref_file), ou_layout):
        again_ref = evaluate_tofu(model, tokenizer, data, retain_reference=form, **kw)
        assert again_ref["provenance"]["cache"] == "hit"
        assert again_ref["forget_quality"] == with_ref["forget_quality"]

    # one changed weight -> a different model hash -> recomputed, never the stale file
    original = model.lm_head.weight[0, 0].item()
    with torch.no_grad():
        model.lm_head.weight[0, 0] += 1.0
    try:
        changed = evaluate_tofu(model, tokenizer, data, **kw)
        assert changed["provenance"]["cache"] == "miss"
        assert changed["provenance"]["model_sha256"] != prov["model_sha256"]
    finally:
        with torch.no_grad():  # restore the exact bits (x + 1 - 1 need not be x in float32)
            model.lm_head.weight[0, 0] = original
    assert model_sha256(model) == prov["model_sha256"]
    # changed data -> recomputed as well
    edited = datasets.DatasetDict(dict(data))
    edited["holdout01"] = data["holdout01"].map(lambda r: {"answer": r["answer"] + " Yes."})
    assert evaluate_tofu(model, tokenizer, edited, **kw)["provenance"]["cache"] == "miss"
    assert evaluate_tofu(model, tokenizer, data, **kw)["provenance"]["cache"] == "hit"
    for f in tmp_path.glob("tofu_eval-*.json"):  # a truncated cache file is recomputed, not trusted
        f.write_text('{"forget_quality": 0.5, "provenance": {')
    assert evaluate_tofu(model, tokenizer, data, **kw)["provenance"]["cache"] == "miss"


def test_evaluate_tofu_rejects_missing_split_and_mismatched_reference(model, tokenizer) -> None:
    data = _tofu_data()
    with pytest.raises(UsageError, match="forget10_perturbed"):
        evaluate_tofu(model, tokenizer, data)
    ref = {"value_by_index": {"forget_truth_ratio": {"0": {"score": 1.0}}},
           "provenance": {"forget_split": "forget05_perturbed"}}
    with pytest.raises(UsageError, match="forget05_perturbed"):
        evaluate_tofu(model, tokenizer, data, forget_split="forget01", holdout_split="holdout01",
                      retain_reference=ref)


def test_generalization_score_on_tiny_model(model, tokenizer) -> None:
    rows = _tofu_data()["holdout01"]
    res = generalization_score(model, tokenizer, rows, max_new_tokens=4)
    assert set(res) == {"exact_match", "rougeL_recall", "token_accuracy"}
    assert res["exact_match"] == 0.0  # 4 new tokens cannot reproduce a 10-token answer
    assert 0 <= res["token_accuracy"] <= 1


# ---------------------------------------------------------------- which split and field feeds which metric
_SPLITS = {"forget": "forget01_perturbed", "holdout": "holdout01", "retain": "retain_perturbed",
           "ra": "real_authors_perturbed", "wf": "world_facts_perturbed"}


def _wiring_rows() -> dict[str, list[dict]]:
    """Every (split, field, row, option) carries its own NLL, written into the answer text as ``nll=<v>``.

    The values are all distinct, so reading any field from another split or another field (the answer
    where the paraphrase belongs, say) changes at least one output.
    """
    rows: dict[str, list[dict]] = {}
    for s, split in enumerate(_SPLITS):
        rows[split] = []
        for r in range(3):
            base = 0.05 + 0.19 * s + 0.37 * r  # 0.19: forget/holdout and forget/retain interleave differently
            rows[split].append({
                "question": f"q {split} {r}",
                "answer": f"nll={base + 0.013:.4f} a",
                "paraphrased_answer": f"nll={base + 0.591:.4f} p",
                "perturbed_answer": [f"nll={base + 0.29 + 0.17 * k:.4f} w{k}" for k in range(3)],
            })
    return rows


def _nll_of(text: str) -> float:
    return float(text.split()[0].removeprefix("nll="))


def _fake_stats(text: str) -> object:
    from grokplug.llm._stats import AnswerStats

    v = _nll_of(text)
    n_right = int(round(v * 1000)) % 4  # teacher-forced argmax right on the first n_right of 4 tokens
    labels = np.array([5, 6, 7, 8])
    argmax = np.where(np.arange(4) < n_right, labels, 9)
    return AnswerStats(avg_nll=v, num_tokens=5, token_logprobs=np.array([-v, -2 * v, -0.5 * v, -3 * v]),
                       argmax=argmax, labels=labels, text=text)


def test_tofu_metric_wiring_each_split_and_field_feeds_its_metric(monkeypatch, tokenizer) -> None:
    """Model statistics are replaced by values read from the answer texts; the metric modules stay real."""
    import grokplug.llm.evaluation as ev

    def fake_answer_stats(model, tokenizer, rows, *, answer_key="answer", **kw):
        return [[_fake_stats(t) for t in row[answer_key]] if isinstance(row[answer_key], list) else _fake_stats(row[answer_key])
                for row in rows]

    def fake_generate(model, tokenizer, rows, *, answer_key="answer", **kw):
        # the "model" always generates the paraphrase: ROUGE against the answer is < 1, against itself 1
        return [{"generation": row["paraphrased_answer"], "ground_truth": row[answer_key]} for row in rows]

    monkeypatch.setattr(ev, "answer_stats", fake_answer_stats)
    monkeypatch.setattr(ev, "generate_answers", fake_generate)
    raw = _wiring_rows()
    data = {_SPLITS[k]: datasets.Dataset.from_list(v) for k, v in raw.items()}
    res = evaluate_tofu(torch.nn.Linear(2, 2), tokenizer, data, forget_split="forget01")

    def col(split: str, field: str) -> list:
        return [[_nll_of(t) for t in row[field]] if field == "perturbed_answer" else _nll_of(row[field]) for row in raw[split]]

    prob, prob_opt, tr, rouge = (load_metric("tofu_probability"), load_metric("tofu_probability", "with_options"),
                                 load_metric("truth_ratio"), load_metric("tofu_rouge"))

    def rouge_of(split: str) -> float:
        return rouge.compute(predictions=[r["paraphrased_answer"] for r in raw[split]],
                             references=[r["answer"] for r in raw[split]])["agg_value"]

    expected = {
        "forget_Q_A_Prob": prob.compute(avg_nll=col("forget", "answer"))["agg_value"],
        "forget_truth_ratio": tr.compute(correct_avg_nll=col("forget", "paraphrased_answer"),
                                         wrong_avg_nlls=col("forget", "perturbed_answer"),
                                         aggregator="closer_to_1_better")["agg_value"],
        "forget_Q_A_ROUGE": rouge_of("forget"),
        "retain_Q_A_Prob": prob.compute(avg_nll=col("retain", "answer"))["agg_value"],
        "retain_Truth_Ratio": tr.compute(correct_avg_nll=col("retain", "paraphrased_answer"),
                                         wrong_avg_nlls=col("retain", "perturbed_answer"),
                                         aggregator="true_better")["agg_value"],
        "retain_Q_A_ROUGE": rouge_of("retain"),
    }
    for tag in ("ra", "wf"):
        expected[f"{tag}_Q_A_Prob_normalised"] = prob_opt.compute(
            avg_nll=col(tag, "answer"), pert_avg_nlls=col(tag, "perturbed_answer"))["agg_value"]
        expected[f"{tag}_Truth_Ratio"] = tr.compute(correct_avg_nll=col(tag, "answer"),
                                                    wrong_avg_nlls=col(tag, "perturbed_answer"),
                                                    aggregator="true_better")["agg_value"]
        expected[f"{tag}_Q_A_ROUGE"] = rouge_of(tag)
    members = [_fake_stats(r["answer"]) for r in raw["forget"]]
    non_members = [_fake_stats(r["answer"]) for r in raw["holdout"]]
    both = members + non_members
    mia = load_metric("tofu_mia").compute(avg_nll=[s.avg_nll for s in both],
                                          token_logprobs=[s.token_logprobs.tolist() for s in both],
                                          texts=[s.text for s in both], is_holdout=[0] * 3 + [1] * 3, k=0.4)
    expected.update({k: mia[k] for k in ("mia_loss", "mia_zlib", "mia_min_k")})
    es = load_metric("extraction_strength").compute(predictions=[s.argmax.tolist() for s in members],
                                                    references=[s.labels.tolist() for s in members])
    expected["extraction_strength"] = es["agg_value"]
    for key, value in expected.items():
        assert res[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert res["model_utility"] == pytest.approx(scipy.stats.hmean([expected[k] for k in UTILITY_KEYS]))
    # privleak against a retain model: hand cases. Same min-k AUC as ours: no leak; AUC 1 − s/2: +100 %
    s = 1 - res["mia_min_k"]
    same = evaluate_tofu(torch.nn.Linear(2, 2), tokenizer, data, forget_split="forget01",
                         retain_reference={"mia_min_k": res["mia_min_k"], "value_by_index": {}})
    assert same["privleak"] == pytest.approx(0.0, abs=1e-6)
    half = evaluate_tofu(torch.nn.Linear(2, 2), tokenizer, data, forget_split="forget01",
                         retain_reference={"mia_min_k": 1 - s / 2, "value_by_index": {}})
    assert half["privleak"] == pytest.approx(100.0, rel=1e-6)
    # the fixture discriminates: each swap the wiring could make gives a different number
    assert prob.compute(avg_nll=col("forget", "paraphrased_answer"))["agg_value"] != pytest.approx(expected["forget_Q_A_Prob"])
    assert prob.compute(avg_nll=col("retain", "answer"))["agg_value"] != pytest.approx(expected["forget_Q_A_Prob"])
    swapped_tr = tr.compute(correct_avg_nll=col("forget", "answer"), wrong_avg_nlls=col("forget", "perturbed_answer"),
                            aggregator="closer_to_1_better")["agg_value"]
    assert swapped_tr != pytest.approx(expected["forget_truth_ratio"])
    # retain rows as the MIA non-members (instead of the holdout) change every AUC: forget/holdout NLLs
    # interleave as 6 of 9 pairs ordered, forget/retain as 8 of 9
    wrong = [_fake_stats(r["answer"]) for r in raw["retain"]]
    wrong_mia = load_metric("tofu_mia").compute(avg_nll=[s.avg_nll for s in members + wrong],
                                                token_logprobs=[s.token_logprobs.tolist() for s in members + wrong],
                                                texts=[s.text for s in members + wrong], is_holdout=[0] * 3 + [1] * 3,
                                                k=0.4)
    assert wrong_mia["mia_loss"] != pytest.approx(expected["mia_loss"])
    assert wrong_mia["mia_min_k"] != pytest.approx(expected["mia_min_k"])
