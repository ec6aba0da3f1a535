"""The `grokplug` commands about runs: `plugins`, `train`, `inspect`, `export` and `demo` (parsers in
grokplug/cli.py).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ._cli_common import json_text, parse_hparams

__all__ = ["cmd_demo", "cmd_export", "cmd_inspect", "cmd_plugins", "cmd_train", "inspect_external", "print_report", "run_summary"]


def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import get_plugin_manager

    info = get_plugin_manager().describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print("plugins:")
    for p in info["plugins"]:
        kind = "built-in" if p["builtin"] else f"{p['distribution']} {p['version']}"
        print(f"  {p['name']}  ({kind})\n      hooks: {', '.join(p['hooks'])}")
    for kind in ("methods", "metrics", "presets"):
        print(f"{kind}:" + ("" if info[kind] else " none"))
        for entry in info[kind]:
            print(f"  {entry['name']:<22} {entry['description'] or ''}  [{entry['plugin']}]")
    for failed in info["failed"]:
        print(f"failed: {failed['name']} ({failed['distribution']}): {failed['error']}")
    return 0


def run_summary(report: Any, run_dir: Path) -> dict[str, Any]:
    from ._rundir import RunDir

    run = RunDir(run_dir)
    out = report.to_dict()
    out["run_dir"] = str(run_dir)
    out["checkpoints_kept"] = len(run.checkpoint_steps())
    out["kept_steps"] = run.checkpoint_steps()
    out["status"] = run.status
    return out


def print_report(summary: dict[str, Any]) -> None:
    def fmt(value: Any) -> str:
        return "—" if value is None else (f"{value:.3g}" if isinstance(value, float) else str(value))

    print(f"run:        {summary['run_dir']} ({summary['status']})")
    print(f"label:      {summary['label']}{' (in progress)' if summary.get('in_progress') else ''}")
    print(f"t_mem:      {fmt(summary['t_mem'])}   t_onset: {fmt(summary['t_onset'])}   t_gen: {fmt(summary['t_gen'])}")
    print(f"grok ratio: {fmt(summary['grok_ratio'])}   gain: {fmt(summary['gain'])}")
    print(f"θ_pre:      step {fmt(summary['pre_step'])}  val {fmt(summary.get('pre_val'))}  (early-stop: {summary['pre_rule']})")
    print(f"θ_pre (mt): step {fmt(summary.get('pre_matched_step'))}  val {fmt(summary.get('pre_matched_val'))}  "
          f"(matched-train: {summary.get('pre_matched_rule') or '—'}; `--start pre-matched`)")
    print(f"θ_grok:     step {fmt(summary['grok_step'])}  val {fmt(summary.get('grok_val'))}  ({summary['grok_rule'] or 'none'})")
    shape = summary.get("shape_numbers") or {}
    if summary.get("shape"):
        print(f"shape:      {summary['shape']}  (peak {fmt(shape.get('peak_val'))} @ {fmt(shape.get('peak_step'))}, trough "
              f"{fmt(shape.get('trough_val'))} @ {fmt(shape.get('trough_step'))}, final {fmt(shape.get('final_val'))} "
              f"@ {fmt(shape.get('final_step'))})")
    print(f"kept:       {summary['checkpoints_kept']} checkpoints")
    for reason in summary.get("reasons", []):
        print(f"  - {reason}")


def cmd_train(args: argparse.Namespace) -> int:
    from ._paths import check_run_dir_target
    from ._retention import RetentionPolicy
    from ._train import train_preset
    from ._validate import check_positive_int, check_seed

    if args.grokfast:
        from grokplug.hooks import grokfast

        grokfast.enable()
    if args.orthograd:
        from grokplug.hooks import orthograd

        orthograd.enable()
    check_run_dir_target(args.run_dir)
    check_seed(args.seed, "--seed")
    if args.max_steps is not None:
        check_positive_int(args.max_steps, "--max-steps")
    started = time.perf_counter()
    report = train_preset(
        args.preset,
        args.run_dir,
        seed=args.seed,
        max_steps=args.max_steps,
        control=args.control,
        retention=RetentionPolicy.dense() if args.dense else None,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    summary = run_summary(report, Path(args.run_dir))
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json_text(summary))
    else:
        print_report(summary)
        print(f"wall time:  {summary['wall_seconds']} s")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from ._paths import check_output_file
    from ._phases import detect_phases
    from ._rundir import RunDir

    if not RunDir.exists(args.run_dir) and args.run_dir.is_dir():  # a run another tool wrote (HF Trainer ...)
        return inspect_external(args)
    run = RunDir(args.run_dir)
    if args.plot:
        check_output_file(args.plot, sources=[args.run_dir], what="--plot")
    report = run.report() if run.status == "finished" else None
    if report is None or not report.shape:  # running, interrupted, or a grok.json without both θ_pre rules
        report = detect_phases(args.run_dir)
    summary = run_summary(report, Path(args.run_dir))
    if args.plot:
        from ._plot import plot_run

        summary["plot"] = str(plot_run(run.history(), report, args.plot, title=f"{run.config.get('preset', run.path.name)}"))
    if args.json:
        print(json_text(summary))
    else:
        print_report(summary)
        if args.plot:
            print(f"plot:       {summary['plot']}")
    return 0


def inspect_external(args: argparse.Namespace) -> int:
    from .external import inspect_source, read_history

    options = parse_hparams(args.option)
    if args.plot:
        from ._paths import check_output_file

        check_output_file(args.plot, sources=[args.run_dir], what="--plot")  # never write into the source
    summary = inspect_source(args.run_dir, **options)
    if args.plot:
        from ._phases import detect_phases
        from ._plot import plot_run

        run = read_history(args.run_dir, **options)
        report = detect_phases(run.history, **run.detector_params)
        summary["plot"] = str(plot_run(run.history, report, args.plot, title=args.run_dir.name))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print_report(summary)
    for note in summary["notes"]:
        print(f"note:       {note}")
    if args.plot:
        print(f"plot:       {summary['plot']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_checkpoint, read_export_info

    options = dict(parse_hparams(args.option))
    out = export_checkpoint(args.run_dir, args.out, args.start, fallback=args.fallback, **options)
    info = read_export_info(out)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True, default=str))
        return 0
    print(f"exported θ_{info['phase']} (step {info['step']}, {info['format']}) of {args.run_dir} to {out}")
    print(f"source sha256: {info['source_sha256']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(out_dir=Path(args.out), suite=args.suite, progress=not args.no_progress)
