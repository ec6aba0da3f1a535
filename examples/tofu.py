"""LLM unlearning on TOFU-style data from θ_pre vs θ_grok, offline on CPU, under `accelerate launch`.

    python examples/tofu.py                                    # generate data, train tofu-rule, compare
    python examples/tofu.py --preset tofu-tiny                 # the memorisation case (does not grok)
    accelerate launch --multi_gpu --num_processes 2 examples/tofu.py --cpu    # 2 ranks on CPU (gloo)
    python examples/tofu.py --preset tofu-tiny --model ./my-llama --dataset locuslab/TOFU --forget-split forget05

Steps: train the preset with tracking (or reuse a finished run in --run-dir), detect its phases,
train the retain ("oracle") model once, then unlearn from θ_pre and θ_grok with each method
(`NAME:lora` unlearns through a LoRA adapter) and print a forget / utility table for both starts.

With several processes every rank trains and unlearns in lockstep (the HF Trainer is data-parallel),
rank 0 writes the run directory, every rank checks it starts from the same checkpoint bytes (sha256),
the evaluations are shared out between the ranks and gathered (gather_object), and rank 0 prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

DEFAULT_METHODS = "llm-graddiff,simnpo,npo:lora"
COLUMNS = (
    ("steps", "steps_to_target", "{:>5}"), ("forget", "forget_acc", "{:>6.3f}"), ("retain", "retain_acc", "{:>6.3f}"),
    ("gen", "gen_acc", "{:>6.3f}"), ("f_prob", "forget_Q_A_Prob", "{:>6.3f}"), ("f_rouge", "forget_Q_A_ROUGE", "{:>7.3f}"),
    ("f_TR", "forget_truth_ratio", "{:>6.3f}"), ("FQ", "forget_quality", "{:>8.2e}"), ("MU", "model_utility", "{:>6.3f}"),
    ("privleak", "privleak", "{:>8.1f}"),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="any AutoModelForCausalLM name or local path (default: tiny Llama)")
    p.add_argument("--dataset", default=None, help="locuslab/TOFU or a local TOFU path (default: generated offline)")
    p.add_argument("--forget-split", default="forget10", choices=("forget01", "forget05", "forget10"))
    p.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated; NAME:lora for LoRA (default {DEFAULT_METHODS})")
    p.add_argument("--preset", default="tofu-rule", choices=("tofu-rule", "tofu-tiny"),
                   help="tofu-rule (default: birth years follow a hidden rule; groks) or tofu-tiny (memorisation only)")
    p.add_argument("--run-dir", default=None, help="the preset's run (reused when finished; default runs/<preset>)")
    p.add_argument("--cpu", action="store_true", help="force CPU (gloo across ranks) even if a GPU is present")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=None, help="training budget of the preset (default: the preset's)")
    p.add_argument("--unlearn-steps", type=int, default=None, help="max updates per unlearning run (default: method's)")
    p.add_argument("--lr", type=float, default=None, help="unlearning learning rate (default: method's offline value)")
    p.add_argument("--eval-every", type=int, default=5, help="monitor the forget accuracy every N updates (default 5)")
    p.add_argument("--target", default="retrain", help="forget-acc target: retrain, frac:F, a number or none")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a recipe field of the preset (JSON value), e.g. --set lr=1e-3")
    p.add_argument("--max-new-tokens", type=int, default=48,
                   help="generation budget for ROUGE (OU uses 200; the tiny model's answers are < 30 tokens)")
    p.add_argument("--json", default=None, metavar="FILE", help="rank 0 also writes the table and run facts as JSON")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """``--set NAME=VALUE`` pairs as a dict (values read as JSON when they parse, else kept as text)."""
    import json

    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--set expects NAME=VALUE, got {pair!r}")
        try:
            out[name] = json.loads(raw)
        except ValueError:
            out[name] = raw
    return out


def log(accelerator: Any, message: str) -> None:
    if accelerator.is_main_process:
        print(message, file=sys.stderr, flush=True)


def train_or_reuse(args: argparse.Namespace, accelerator: Any) -> Path:
    from grokplug import RunDir, train_preset

    run_dir = Path(args.run_dir or f"runs/{args.preset}")
    overrides = parse_settings(args.set)
    overrides.update({k: v for k, v in (("model", args.model), ("dataset", args.dataset)) if v is not None})
    if RunDir.exists(run_dir) and RunDir(run_dir).status == "finished":
        recorded = RunDir(run_dir).config
        if any(recorded.get(k) != v for k, v in overrides.items()):
            raise SystemExit(f"{run_dir} holds a run with another recipe (--model/--dataset/--set); pass a new --run-dir")
        log(accelerator, f"reusing the finished run in {run_dir}")
        return run_dir
    log(accelerator, f"training {args.preset} into {run_dir} ({accelerator.num_processes} process(es)) ...")
    started = time.perf_counter()
    train_preset(args.preset, run_dir, seed=args.seed, max_steps=args.max_steps, overrides=overrides or None,
                 overwrite=RunDir.exists(run_dir), progress=not args.no_progress)
    log(accelerator, f"trained in {time.perf_counter() - started:.0f} s")
    return run_dir


def same_start_everywhere(run_dir: Path, phase: str, accelerator: Any) -> list[str]:
    """Every rank hashes the checkpoint file it will load; all hashes (one per rank) must agree."""
    import hashlib

    from accelerate.utils import gather_object

    from grokplug import request_checkpoint

    ref = request_checkpoint(run_dir, phase, fallback="final")
    digests = gather_object([hashlib.sha256(Path(ref.path).read_bytes()).hexdigest()])
    if len(set(digests)) != 1 or digests[0] != ref.sha256:
        raise SystemExit(f"ranks disagree on the θ_{phase} checkpoint: {digests}")
    return digests


def print_table(rows: list[dict[str, Any]], report: Any, forget_split: str, preset: str) -> None:
    head = f"{'start':<5} {'step':>5} {'method':<14} " + " ".join(f"{name:>{len(fmt.format(0.0 if 'f}' in fmt or 'e}' in fmt else 0))}}" for name, _, fmt in COLUMNS)
    print(f"\nTOFU-style unlearning ({forget_split}) of {preset}: {report.label}, θ_pre = step {report.pre_step}, "
          f"θ_grok = step {report.grok_step if report.grok_step is not None else 'none (final used)'}")
    print(head)
    for row in rows:
        cells = []
        for _, key, fmt in COLUMNS:
            value = row.get(key)
            width = len(fmt.format(0.0 if "f}" in fmt or "e}" in fmt else 0))
            cells.append(f"{'—':>{width}}" if value is None else fmt.format(value))
        print(f"{row['start']:<5} {row['start_step']:>5} {row['method']:<14} " + " ".join(cells))
    print("\nforget/retain/gen: teacher-forced answer-token accuracy on the forget set, the retain set and the held-out")
    print("questions about retain authors (tofu-rule: rule-derived birth years; tofu-tiny: unseen phrasings); forget =")
    print("the paper's UA: lower = more forgotten. steps: updates until forget")
    print("reached the target (— = not reached). FQ = forget_quality (KS p-value vs the retain model; higher =")
    print("closer to never having seen the forget set), MU = model_utility, privleak: 0 = like the retain model.")


def main(argv: list[str] | None = None) -> int:
    import grokplug
    from grokplug.errors import GrokplugError

    try:
        # under `accelerate launch`: SIGTERM from the launcher unwinds, and the process group is ended
        # before Python exits (a gloo group left to exit can abort the process)
        with grokplug.stop_cleanly():
            return run(parse_args(argv))
    except grokplug.Terminated:
        print("tofu.py: stopped by SIGTERM (another rank failed or the job was cancelled)", file=sys.stderr)
        return 143
    except GrokplugError as exc:  # a bad --model / --dataset / option: one line, not a traceback
        print(f"tofu.py: error: {exc}", file=sys.stderr)
        return exc.exit_code


def run(args: argparse.Namespace) -> int:
    from accelerate import Accelerator
    from accelerate.utils import gather_object

    import grokplug
    from grokplug.llm import LLMRunData, evaluate_tofu, retain_only_reference

    accelerator = Accelerator(cpu=args.cpu or not torch.cuda.is_available())
    run_dir = train_or_reuse(args, accelerator)
    report = grokplug.detect_phases(run_dir)
    log(accelerator, f"phases: {report.label} (t_mem {report.t_mem}, t_gen {report.t_gen}, θ_pre {report.pre_step}, "
                     f"θ_grok {report.grok_step})")
    hashes = {start: same_start_everywhere(run_dir, start, accelerator) for start in ("pre", "grok")}
    log(accelerator, f"all {accelerator.num_processes} rank(s) start from the same checkpoints: "
                     + ", ".join(f"θ_{k} {v[0][:12]}" for k, v in hashes.items()))
    data = LLMRunData(run_dir, args.forget_split)
    log(accelerator, "retain model (trained once with the same recipe, cached in the run dir) ...")
    eval_kwargs = {"max_length": data.max_length, "max_new_tokens": args.max_new_tokens}
    reference = retain_only_reference(run_dir, args.forget_split, data=data, progress=not args.no_progress,
                                 eval_kwargs=eval_kwargs)
    hparams: dict[str, Any] = {}
    if args.unlearn_steps:
        hparams["max_steps"] = args.unlearn_steps
    jobs = []
    for spec in [m.strip() for m in args.methods.split(",") if m.strip()]:
        name, _, flag = spec.partition(":")
        for start in ("pre", "grok"):
            jobs.append((start, name, flag == "lora", spec))
    finished = []
    for start, name, lora, spec in jobs:  # every rank runs every job in lockstep (data-parallel Trainer)
        log(accelerator, f"unlearning: {spec} from θ_{start} ...")
        params = dict(hparams)
        if args.lr is not None:
            params["learning_rate"] = args.lr
        elif lora:
            params["learning_rate"] = 1e-3  # adapters start at zero: they need a larger step than full weights
        result = grokplug.unlearn(name, source=run_dir, splits=data, start=start, lora=lora, seed=args.seed,
                                  hparams=params, target=args.target, fallback="final", retain_reference_eval=reference,
                                  evaluate=False, accelerator=accelerator, eval_every=args.eval_every)
        row = grokplug.result_to_dict(result)
        row.update(start=start, method=spec)
        finished.append((row, result.model))
    # Evaluate: jobs are shared out between the ranks, results gathered on every rank.
    mine = []
    for index, (_, model) in enumerate(finished):
        if index % accelerator.num_processes == accelerator.process_index:
            evaluation = evaluate_tofu(model, data.tokenizer, data.splits, forget_split=data.forget_split,
                                       retain_reference=reference, **eval_kwargs)
            scalars = {k: v for k, v in evaluation.items() if isinstance(v, (int, float)) or v is None}
            # the per-item truth ratios forget_quality was computed from, so a reader can re-check the KS test
            ratios = [v["score"] for v in evaluation["value_by_index"]["forget_truth_ratio"].values()]
            mine.append((index, {**scalars, "forget_truth_ratios": ratios}))
    gathered = dict(gather_object(mine))
    if accelerator.is_main_process:
        rows = [{**row, **gathered[i]} for i, (row, _) in enumerate(finished)]
        rows.sort(key=lambda r: (r["start"] != "pre", r["method"]))
        print_table(rows, report, args.forget_split, args.preset)
        print(f"retain model: forget {reference['scores']['forget_acc']:.3f}  retain {reference['scores']['retain_acc']:.3f}"
              f"  MU {reference['model_utility']:.3f}")
        if args.json:
            import json

            summary = {"world_size": accelerator.num_processes, "run_dir": str(run_dir), "report": report.to_dict(),
                       "start_sha256_by_rank": hashes, "retain_model": reference["scores"], "rows": rows}
            Path(args.json).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    accelerator.wait_for_everyone()
    return 0


if __name__ == "__main__":
    sys.exit(main())
