"""Section 5, TOFU evaluation throughput: batched against a per-sample loop on the tiny LM.

Data: ``generate_tofu(seed=0)`` at TOFU's own size (200 authors: forget10 = 400 rows, holdout10 400,
retain_perturbed 400, real authors 100, world facts 117), a tokenizer trained on it, and the tiny Llama
of the ``tofu-tiny`` preset (its config when the preset is registered, else ``tiny_causal_lm``'s
defaults), freshly initialised. An untrained model never emits EOS, so every generation runs the
full ``max_new_tokens``: the worst case for the ROUGE part.

* speed-up: throughput (rows/s) of :func:`evaluate_tofu` with its batched default (32 rows per split, so
  batches are full) against ``per_sample=True`` (batch of one, row order; 8 rows per split, since its cost
  per row does not depend on how many rows there are), interleaved; on the same rows the summary values
  of both paths must agree;
* the full OU suite on forget10 (``evaluate_tofu(..., forget_split="forget10")``), batched, timed twice:
  on a copy fine-tuned 300 steps (its answers end with EOS, as a trained model's do) and on the untrained
  model (every answer runs 200 tokens: the worst case, as for a model unlearned into babbling).
"""

from __future__ import annotations

import time
from typing import Any

from _common import Context, fmt_spread, ratios, side_by_side, spread, table, target

SPEEDUP_TARGET = 5.0
FULL_TARGET_S = 60.0
_FULL_LABELS = {"trained": "fine-tuned 300 steps (answers end with EOS)",
                "untrained": "untrained (never emits EOS: worst case, like a babbling unlearned model)"}
SPLITS = ("forget10_perturbed", "holdout10", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed")


def _model_and_data(ctx: Context) -> tuple[Any, Any, Any, str]:
    from grokplug.llm.data import generate_tofu
    from grokplug.llm.model import tiny_causal_lm, train_tokenizer

    ctx.log("tofu_eval: generating TOFU-size data and a tokenizer")
    data = generate_tofu(seed=0)
    from grokplug.llm.finetune import corpus

    tokenizer = train_tokenizer(corpus(data))
    model_kw: dict[str, Any] = {}
    origin = "tiny_causal_lm defaults"
    try:
        from grokplug.plugins import get_plugin_manager

        preset = get_plugin_manager().presets.get("tofu-tiny")
        cfg = preset.resolve_config()
        model_kw = {k: cfg[k] for k in ("hidden", "layers", "heads") if k in cfg}
        if cfg.get("intermediate"):
            model_kw["intermediate"] = cfg["intermediate"]
        if cfg.get("max_positions"):
            model_kw["max_positions"] = int(cfg["max_positions"])
        origin = "the tofu-tiny preset's config"
    except Exception:  # noqa: BLE001 - the preset is optional here; say which model was used
        pass
    model = tiny_causal_lm(tokenizer, seed=0, **model_kw)
    n_params = sum(p.numel() for p in model.parameters())
    return model, tokenizer, data, f"{origin} ({n_params / 1e6:.2f}M params, {model_kw or 'defaults'})"


def _train_briefly(model: Any, tokenizer: Any, data: Any, steps: int) -> Any:
    """A copy of ``model`` fine-tuned ``steps`` steps on the ``full`` split (tofu-tiny's lr, wd and batch).

    Enough to learn the answer format and to end answers with EOS, so generation stops where a trained
    model's would; a plain loop (no Trainer) because only the weights matter here.
    """
    import copy

    import torch
    from torch.utils.data import DataLoader

    from grokplug.llm.qa import DataCollatorForSupervisedDataset, QADataset

    model = copy.deepcopy(model)
    loader = DataLoader(QADataset(data["full"], tokenizer, max_length=128), batch_size=32, shuffle=True,
                        collate_fn=DataCollatorForSupervisedDataset(tokenizer), generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, betas=(0.9, 0.98))
    model.train()
    done = 0
    while done < steps:
        for batch in loader:
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            done += 1
            if done >= steps:
                break
    model.eval()
    return model


def _mean_generated_tokens(result: dict[str, Any], tokenizer: Any) -> float | None:
    gens = [v.get("generation", "") for v in result.get("value_by_index", {}).get("forget_Q_A_ROUGE", {}).values()]
    if not gens:
        return None
    return sum(len(tokenizer(g, add_special_tokens=False)["input_ids"]) for g in gens) / len(gens)


def _subset(data: Any, n: int) -> Any:
    import datasets

    return datasets.DatasetDict({k: data[k].select(range(min(n, len(data[k])))) for k in SPLITS})


def run(ctx: Context) -> dict[str, Any]:
    try:
        from grokplug.llm.evaluation import SUMMARY_KEYS, evaluate_tofu
    except ImportError as exc:
        return {"status": "not run", "why": f"grokplug.llm.evaluation is not available ({exc})"}
    model, tokenizer, data, origin = _model_and_data(ctx)
    # Throughput (rows/s) is what is compared. The per-sample loop costs the same per row at any N, so it
    # runs on fewer rows; the batched path gets N_BATCHED rows per split so its batches are full (32).
    n_batched, n_single = ctx.pick(32, 6), ctx.pick(8, 6)
    sets = {"batched": _subset(data, n_batched), "per_sample": _subset(data, n_single)}
    rows = {k: sum(len(v[s]) for s in SPLITS) for k, v in sets.items()}
    results: dict[str, Any] = {}

    def clock(per_sample: bool, subset: Any, key: str) -> Any:
        def go() -> float:
            started = time.perf_counter()
            results[key] = evaluate_tofu(model, tokenizer, subset, forget_split="forget10", per_sample=per_sample)
            return time.perf_counter() - started
        return go

    clock(False, sets["per_sample"], "batched_same_rows")()  # warm-up, and the values to check against
    repeats = ctx.reps(2, 1)
    ctx.log(f"tofu_eval: batched on {n_batched} rows/split vs per-sample on {n_single} rows/split, {repeats} repeats")
    times = side_by_side({"batched": clock(False, sets["batched"], "batched"),
                          "per_sample": clock(True, sets["per_sample"], "per_sample")}, repeats)
    throughput = {k: [rows[k] / t for t in v] for k, v in times.items()}
    speedup = spread(ratios(throughput["batched"], throughput["per_sample"]))
    same, single = results["batched_same_rows"], results["per_sample"]
    diffs = {k: abs(same[k] - single[k]) for k in SUMMARY_KEYS
             if isinstance(same.get(k), float) and isinstance(single.get(k), float)}

    full: dict[str, dict[str, Any]] = {}
    full_rows = sum(len(data[k]) for k in SPLITS)
    if not ctx.quick:
        train_steps = 300
        ctx.log(f"tofu_eval: fine-tuning a copy {train_steps} steps so its answers end with EOS")
        trained = _train_briefly(model, tokenizer, data, train_steps)
        for key, m in (("trained", trained), ("untrained", model)):
            ctx.log(f"tofu_eval: full forget10 suite ({full_rows} rows), batched, {key} model")
            started = time.perf_counter()
            res = evaluate_tofu(m, tokenizer, data, forget_split="forget10")
            full[key] = {"seconds": time.perf_counter() - started, "mean_generated_tokens": _mean_generated_tokens(res, tokenizer)}
        full["trained"]["train_steps"] = train_steps
    table_rows = [
        ["batched (batch 32, length-sorted)", rows["batched"], fmt_spread(spread(times["batched"]), 1, 2, " s"),
         fmt_spread(spread(throughput["batched"]), 1, 2)],
        ["per-sample loop (per_sample=True)", rows["per_sample"], fmt_spread(spread(times["per_sample"]), 1, 2, " s"),
         fmt_spread(spread(throughput["per_sample"]), 1, 2)],
    ]
    notes = [f"model: {origin}; the throughput rows use it untrained (every generation runs max_new_tokens=200)",
             f"largest |batched − per-sample| over the summary values on the same {rows['per_sample']} rows: "
             f"{max(diffs.values(), default=0.0):.2e} ({len(diffs)} values compared)"]
    if not full:
        notes.append("quick run: the full forget10 suite was not timed, and both paths ran on the same few rows "
                     "(batches of 6), which understates the batched speed-up")
    return {
        "status": "ok",
        "summary": (f"batched evaluation is {fmt_spread(speedup, 1, 1, '×')} the per-sample loop's throughput"
                    + (f"; the full forget10 suite ({full_rows} rows) took {full['trained']['seconds']:.1f} s "
                       f"(briefly trained model), {full['untrained']['seconds']:.1f} s (untrained: worst case)"
                       if full else "")),
        "tables": [
            table(f"evaluate_tofu (the whole OU suite) on the first rows of each of the 5 splits, median [spread] over {repeats}",
                  ["path", "rows", "seconds", "rows/s"], table_rows),
            table("full OU suite on forget10 (batched, batch 32, max_new_tokens 200)",
                  ["model", "rows", "mean answer length (tokens, re-encoded)", "seconds"],
                  [[_FULL_LABELS[k], full_rows, f"{v['mean_generated_tokens']:.1f}" if v["mean_generated_tokens"] is not None
                    else "–", f"{v['seconds']:.1f}"] for k, v in full.items()]
                  or [["–", full_rows, "–", "not timed (quick)"]]),
        ],
        "targets": [
            target("batched ÷ per-sample throughput", round(speedup["median"], 2), SPEEDUP_TARGET, ">=", "×",
                   note="quick run: batches of 6, not the full batches of 32 the target is about" if ctx.quick else ""),
            target("full forget10 evaluation on CPU (briefly trained tiny LM)",
                   round(full["trained"]["seconds"], 1) if full else None, FULL_TARGET_S, "<=", " s",
                   note="" if full else "not timed in a quick run"),
            target("full forget10 evaluation on CPU (untrained: every answer runs 200 tokens, the worst case)",
                   round(full["untrained"]["seconds"], 1) if full else None, FULL_TARGET_S, "<=", " s",
                   note="" if full else "not timed in a quick run"),
        ],
        "notes": notes,
        "data": {"rows": rows, "times": times, "throughput": throughput, "speedup": speedup, "diffs": diffs,
                 "full": full, "full_rows": full_rows, "model": origin},
    }
