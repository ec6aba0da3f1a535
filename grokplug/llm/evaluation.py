"""TOFU evaluation with open-unlearning's metric definitions, batched, offline and cached by content.

:func:`evaluate_tofu` computes per-sample statistics once (:mod:`grokplug.llm._stats`) and scores them
with the ``evaluate`` modules shipped in ``grokplug/llm/metrics/<name>/`` (loaded by local path, never
from the hub). It returns OU's summary keys (``forget_quality``, ``model_utility``,
``forget_truth_ratio``, ``forget_Q_A_Prob``, ``forget_Q_A_ROUGE``, ``extraction_strength``,
``privleak``), the MIA AUCs, the 9 utility components, ``value_by_index`` and ``provenance``.

``forget_quality`` and ``privleak`` need a retain ("oracle") model's evaluation: pass
``retain_reference=`` the dict :func:`evaluate_tofu` returned for that model (or its JSON file, or OU's
``TOFU_EVAL.json``). Without it ``forget_quality`` is ``None`` and privleak uses OU's reference AUC 0.5;
``notes`` says so. Unlike OU (``overwrite: false``, issue #71), a ``cache_dir`` result is reused only
when the model weights, the data rows, the reference and every parameter that changes values match.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._atomic import sha256_json, write_json_atomic
from ..errors import UsageError
from ._stats import (
    DEFAULT_TEMPLATE,
    answer_stats,
    generate_answers,
    model_sha256,
    rows_sha256,
    tokenizer_sha256,
)
from .metric_modules import (
    METRIC_NAMES,
    library_versions,
    load_metric,
    metric_versions,
    read_cached_evaluation,
)
from .qa import QATemplate

__all__ = ["METRIC_NAMES", "SUMMARY_KEYS", "UTILITY_KEYS", "evaluate_tofu", "generalization_score", "load_metric"]

SUMMARY_KEYS = ("forget_quality", "model_utility", "forget_truth_ratio", "forget_Q_A_Prob", "forget_Q_A_ROUGE",
                "extraction_strength", "privleak")
UTILITY_KEYS = ("retain_Q_A_Prob", "retain_Q_A_ROUGE", "retain_Truth_Ratio", "ra_Q_A_Prob_normalised",
                "ra_Q_A_ROUGE", "ra_Truth_Ratio", "wf_Q_A_Prob_normalised", "wf_Q_A_ROUGE", "wf_Truth_Ratio")
_FORMAT = 1  # bump when the result layout changes: older cache files are then recomputed


def _reference(ref: Mapping[str, Any] | str | os.PathLike[str] | None) -> dict[str, Any]:
    """Forget truth ratios and min-k AUC of a retain model, from our result dict or OU's TOFU_EVAL.json."""
    if ref is None:
        return {"truth_ratios": None, "mia_min_k": None, "forget_split": None}
    if isinstance(ref, (str, os.PathLike)):
        try:
            ref = json.loads(Path(ref).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read retain_reference {str(ref)!r}: {exc}") from None
    if not isinstance(ref, Mapping):
        raise UsageError("retain_reference must be a mapping, a JSON path, or None")
    if isinstance(ref.get("forget_truth_ratio"), Mapping):  # OU: {"forget_truth_ratio": {"value_by_index"}}
        by_index = ref["forget_truth_ratio"].get("value_by_index") or {}
        mink = (ref.get("mia_min_k") or {}).get("agg_value")
        split = None
    else:
        by_index = (ref.get("value_by_index") or {}).get("forget_truth_ratio") or {}
        mink = ref.get("mia_min_k")
        split = (ref.get("provenance") or {}).get("forget_split")
    trs = [float(v["score"]) for v in by_index.values() if v is not None and v.get("score") is not None]
    return {"truth_ratios": trs or None, "mia_min_k": None if mink is None else float(mink), "forget_split": split}


def _split(data: Mapping[str, Any], name: str) -> Any:
    if name not in data:
        raise UsageError(f"the TOFU data has no split {name!r}; splits are {sorted(data)}")
    return data[name]


def _indices(rows: Any) -> list[str]:
    cols = getattr(rows, "column_names", None) or (list(rows[0]) if len(rows) else [])
    return [str(i) for i in (rows["index"] if "index" in cols else range(len(rows)))]


def evaluate_tofu(
    model: torch.nn.Module,
    tokenizer: Any,
    data: Mapping[str, Any],
    *,
    forget_split: str = "forget10",
    holdout_split: str | None = None,
    retain_reference: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    batch_size: int = 32,
    max_new_tokens: int = 200,
    max_length: int = 512,
    template: QATemplate = DEFAULT_TEMPLATE,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    per_sample: bool = False,
) -> dict[str, Any]:
    """OU's default TOFU suite on ``data`` (a ``DatasetDict`` keyed by TOFU config names).

    Reads ``<forget_split>_perturbed``, ``<holdout_split>`` (default: the holdout of the same size), ``retain_perturbed``,
    ``real_authors_perturbed`` and ``world_facts_perturbed``. ``batch_size`` and ``per_sample`` change
    speed, not values (up to float rounding), so they are not part of the cache key.
    """
    forget_name = forget_split if forget_split.endswith("_perturbed") else f"{forget_split}_perturbed"
    if holdout_split is None:  # OU pairs forgetNN with holdoutNN (same size member / non-member sets)
        holdout_split = forget_name.removesuffix("_perturbed").replace("forget", "holdout")
    names = {"forget": forget_name, "holdout": holdout_split, "retain": "retain_perturbed",
             "ra": "real_authors_perturbed", "wf": "world_facts_perturbed"}
    splits = {k: _split(data, v) for k, v in names.items()}
    ref = _reference(retain_reference)
    if ref["forget_split"] not in (None, forget_name):
        raise UsageError(f"retain_reference was evaluated on {ref['forget_split']!r}, not {forget_name!r}")
    params = {"forget_split": forget_name, "holdout_split": holdout_split, "max_new_tokens": int(max_new_tokens),
              "max_length": int(max_length), "template": repr(template), "seed": int(seed)}
    provenance = {
        "format": _FORMAT, **params,
        "splits": {names[k]: {"rows": len(v), "sha256": rows_sha256(v)} for k, v in splits.items()},
        "model_sha256": model_sha256(model),
        "tokenizer_sha256": tokenizer_sha256(tokenizer),
        "reference_sha256": None if retain_reference is None else sha256_json(
            {"truth_ratios": ref["truth_ratios"], "mia_min_k": ref["mia_min_k"]}),  # the values used, any layout
        "metric_modules": metric_versions(),
        "versions": library_versions(),
    }
    provenance["data_sha256"] = sha256_json(provenance["splits"])
    key = sha256_json({k: v for k, v in provenance.items() if k != "splits"})
    cache_file = Path(cache_dir) / f"tofu_eval-{key[:32]}.json" if cache_dir is not None else None
    cached = read_cached_evaluation(cache_file, provenance)
    if cached is not None:
        return cached
    start = time.perf_counter()
    device = next(model.parameters()).device
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # seeded inside, the caller's RNG streams untouched
        torch.manual_seed(int(seed))
        result = _compute(model, tokenizer, splits, ref, batch_size=batch_size, max_new_tokens=max_new_tokens,
                          max_length=max_length, template=template, per_sample=per_sample)
    provenance.update(batch_size=int(batch_size), per_sample=bool(per_sample),
                      seconds=round(time.perf_counter() - start, 3), cache="miss" if cache_file else None)
    result["provenance"] = provenance
    if cache_file is not None:
        write_json_atomic(cache_file, result)
    return result


def _compute(model: torch.nn.Module, tokenizer: Any, splits: dict[str, Any], ref: dict[str, Any],
             **kw: Any) -> dict[str, Any]:
    gen_kw = {k: kw[k] for k in ("batch_size", "max_new_tokens", "max_length", "template", "per_sample")}
    st_kw = {k: v for k, v in gen_kw.items() if k != "max_new_tokens"}

    def nll(rows: Any, key: str) -> list[Any]:
        return answer_stats(model, tokenizer, rows, answer_key=key, **st_kw)

    def avg(stats: list[Any]) -> list[Any]:
        return [[s.avg_nll for s in x] if isinstance(x, list) else x.avg_nll for x in stats]

    def rouge(rows: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
        gens = generate_answers(model, tokenizer, rows, **gen_kw)
        res = load_metric("tofu_rouge").compute(predictions=[g["generation"] for g in gens],
                                                references=[g["ground_truth"] for g in gens])
        return res, gens

    prob, prob_opt, tr = load_metric("tofu_probability"), load_metric("tofu_probability", "with_options"), \
        load_metric("truth_ratio")
    out: dict[str, Any] = {}
    notes: list[str] = []
    # forget side
    f_rows = splits["forget"]
    f_ans, f_para, f_pert = nll(f_rows, "answer"), nll(f_rows, "paraphrased_answer"), nll(f_rows, "perturbed_answer")
    f_prob = prob.compute(avg_nll=avg(f_ans))
    f_tr = tr.compute(correct_avg_nll=avg(f_para), wrong_avg_nlls=avg(f_pert), aggregator="closer_to_1_better")
    f_rouge, f_gens = rouge(f_rows)
    argmax, labels = [s.argmax.tolist() for s in f_ans], [s.labels.tolist() for s in f_ans]
    es = load_metric("extraction_strength").compute(predictions=argmax, references=labels)
    em = load_metric("exact_memorization").compute(predictions=argmax, references=labels)
    out.update(forget_truth_ratio=f_tr["agg_value"], forget_Q_A_Prob=f_prob["agg_value"],
               forget_Q_A_ROUGE=f_rouge["agg_value"], extraction_strength=es["agg_value"],
               exact_memorization=em["agg_value"])
    fq = load_metric("forget_quality").compute(truth_ratios=f_tr["values"],
                                               reference_truth_ratios=ref["truth_ratios"])
    out["forget_quality"] = fq["agg_value"]
    if fq["note"]:
        notes.append(f"forget_quality is None: {fq['note']} (pass retain_reference=)")
    # membership inference: forget (members, label 0) vs holdout (non-members, label 1)
    h_ans = nll(splits["holdout"], "answer")
    both = f_ans + h_ans
    mia = load_metric("tofu_mia").compute(avg_nll=[s.avg_nll for s in both],
                                          token_logprobs=[s.token_logprobs.tolist() for s in both],
                                          texts=[s.text for s in both], is_holdout=[0] * len(f_ans) + [1] * len(h_ans),
                                          k=0.4)
    out.update({k: mia[k] for k in ("mia_loss", "mia_zlib", "mia_min_k")})
    ref_auc = ref["mia_min_k"]
    if ref_auc is None:
        ref_auc = 0.5
        notes.append("privleak uses OU's default reference AUC 0.5 (no retain-model mia_min_k given)")
    s, r = 1 - out["mia_min_k"], 1 - ref_auc
    out["privleak"] = (s - r) / (r + 1e-10) * 100
    # model utility: retain (para vs pert), real authors and world facts (answer vs pert)
    r_rows = splits["retain"]
    r_ans = nll(r_rows, "answer")
    out["retain_Q_A_Prob"] = prob.compute(avg_nll=avg(r_ans))["agg_value"]
    out["retain_Q_A_ROUGE"] = rouge(r_rows)[0]["agg_value"]
    out["retain_Truth_Ratio"] = tr.compute(correct_avg_nll=avg(nll(r_rows, "paraphrased_answer")),
                                           wrong_avg_nlls=avg(nll(r_rows, "perturbed_answer")),
                                           aggregator="true_better")["agg_value"]
    for tag in ("ra", "wf"):
        rows = splits[tag]
        ans, pert = avg(nll(rows, "answer")), avg(nll(rows, "perturbed_answer"))
        out[f"{tag}_Q_A_Prob_normalised"] = prob_opt.compute(avg_nll=ans, pert_avg_nlls=pert)["agg_value"]
        out[f"{tag}_Q_A_ROUGE"] = rouge(rows)[0]["agg_value"]
        out[f"{tag}_Truth_Ratio"] = tr.compute(correct_avg_nll=ans, wrong_avg_nlls=pert,
                                               aggregator="true_better")["agg_value"]
    out["model_utility"] = load_metric("model_utility").compute(values=[out[k] for k in UTILITY_KEYS])["agg_value"]
    idx = _indices(f_rows)
    out["value_by_index"] = {
        "forget_truth_ratio": {i: {"score": v} for i, v in zip(idx, f_tr["values"], strict=True)},
        "forget_Q_A_Prob": {i: {"prob": v, "avg_loss": s.avg_nll} for i, v, s in zip(idx, f_prob["values"], f_ans, strict=True)},
        "forget_Q_A_ROUGE": {i: {**v, **g} for i, v, g in zip(idx, f_rouge["values"], f_gens, strict=True)},
        "extraction_strength": {i: {"score": v} for i, v in zip(idx, es["values"], strict=True)},
        "mia_min_k": {i: {"score": v} for i, v in zip(idx, mia["scores"]["min_k"][:len(idx)], strict=True)},
    }
    out["notes"] = notes
    return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in out.items()}


def generalization_score(
    model: torch.nn.Module,
    tokenizer: Any,
    rows: Any,
    *,
    question_key: str = "question",
    answer_key: str = "answer",
    batch_size: int = 32,
    max_new_tokens: int = 64,
    max_length: int = 512,
    template: QATemplate = DEFAULT_TEMPLATE,
) -> dict[str, float]:
    """Answer accuracy on a split (e.g. ``generalization``: held-out phrasings of trained facts).

    ``exact_match``: share of greedy answers equal to the ground truth (case and spacing ignored);
    ``rougeL_recall``: mean ROUGE-L recall; ``token_accuracy``: mean teacher-forced exact memorization.
    """
    gens = generate_answers(model, tokenizer, rows, question_key=question_key, answer_key=answer_key,
                            batch_size=batch_size, max_new_tokens=max_new_tokens, max_length=max_length,
                            template=template)
    stats = answer_stats(model, tokenizer, rows, question_key=question_key, answer_key=answer_key,
                         batch_size=batch_size, max_length=max_length, template=template)

    def norm(text: str) -> str:
        return " ".join(text.lower().split())

    exact = [norm(g["generation"]) == norm(g["ground_truth"]) for g in gens]
    rouge = load_metric("tofu_rouge").compute(predictions=[g["generation"] for g in gens],
                                              references=[g["ground_truth"] for g in gens])
    em = load_metric("exact_memorization").compute(predictions=[s.argmax.tolist() for s in stats],
                                                   references=[s.labels.tolist() for s in stats])
    return {"exact_match": float(np.mean(exact)) if exact else float("nan"),
            "rougeL_recall": rouge["agg_value"], "token_accuracy": em["agg_value"]}
