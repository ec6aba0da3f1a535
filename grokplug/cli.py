"""``grokplug`` command line: plugins | train | inspect | unlearn | compare | export | demo.

Handled errors print one line (``grokplug: error: ...``) and exit with the error's code (2 for misuse).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._signals import Terminated, stop_cleanly
from .errors import GrokplugError, GrokplugWarning, UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _json(obj: Any) -> str:
    """JSON that is JSON: a NaN or infinity becomes null (Python would print the invalid token NaN)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(obj), indent=2, ensure_ascii=False, allow_nan=False, default=str)


def _method_entry(name: str) -> Any:
    from .plugins import get_plugin_manager

    return get_plugin_manager().methods.entry(name)


def _cmd_plugins(args: argparse.Namespace) -> int:
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


def _summary(report: Any, run_dir: Path) -> dict[str, Any]:
    from ._rundir import RunDir

    run = RunDir(run_dir)
    out = report.to_dict()
    out["run_dir"] = str(run_dir)
    out["checkpoints_kept"] = len(run.checkpoint_steps())
    out["kept_steps"] = run.checkpoint_steps()
    out["status"] = run.status
    return out


def _print_report(summary: dict[str, Any]) -> None:
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


def _cmd_train(args: argparse.Namespace) -> int:
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
    summary = _summary(report, Path(args.run_dir))
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(_json(summary))
    else:
        _print_report(summary)
        print(f"wall time:  {summary['wall_seconds']} s")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from ._paths import check_output_file
    from ._phases import detect_phases
    from ._rundir import RunDir

    if not RunDir.exists(args.run_dir) and args.run_dir.is_dir():  # a run another tool wrote (HF Trainer ...)
        return _inspect_external(args)
    run = RunDir(args.run_dir)
    if args.plot:
        check_output_file(args.plot, sources=[args.run_dir], what="--plot")
    report = run.report() if run.status == "finished" else None
    if report is None or not report.shape:  # running, interrupted, or a grok.json without both θ_pre rules
        report = detect_phases(args.run_dir)
    summary = _summary(report, Path(args.run_dir))
    if args.plot:
        from ._plot import plot_run

        summary["plot"] = str(plot_run(run.history(), report, args.plot, title=f"{run.config.get('preset', run.path.name)}"))
    if args.json:
        print(_json(summary))
    else:
        _print_report(summary)
        if args.plot:
            print(f"plot:       {summary['plot']}")
    return 0


def _inspect_external(args: argparse.Namespace) -> int:
    from .external import inspect_source, read_history

    options = _hparams(args.option)
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
    _print_report(summary)
    for note in summary["notes"]:
        print(f"note:       {note}")
    if args.plot:
        print(f"plot:       {summary['plot']}")
    return 0


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"forget rate must be a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"forget rate must lie strictly between 0 and 1, got {value}")
    return value


def _hparams(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--set expects NAME=VALUE, got {pair!r}")
        try:
            out[name] = json.loads(raw)
        except ValueError:
            out[name] = raw
    return out


def _cmd_sweep(args: argparse.Namespace) -> int:
    from ._sweep import sweep_strength
    from ._validate import check_strengths

    try:
        values = [float(v) for v in args.sweep.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--sweep expects numbers separated by commas, got {args.sweep!r}") from None
    values = check_strengths(values, "--sweep strength")
    info = sweep_strength(
        args.method, values, source=args.run_dir, start=args.start, seed=args.seed, target=args.target or "test",
        hparams=_hparams(args.set), profile=args.profile, forget_rate=args.forget_rate,
        forget_classes=args.forget_class, fallback=args.fallback,
    )
    if args.json:
        print(_json(info))
        return 0
    print(f"{info['method']} from θ_{args.start}: sweeping {info['strength_param']}")
    for point in info["points"]:
        print(f"  {point['strength']:>10g}  forget {point['forget_acc']:.3f}  retain {point['retain_acc']:.3f}  "
              f"test {point.get('test_acc', float('nan')):.3f}{'  ← target reached' if point['reached'] else ''}")
    print(f"strength_to_target: {info['strength_to_target']}")
    return 0


def _cmd_unlearn(args: argparse.Namespace) -> int:
    import contextlib

    from ._advice import note_for_result
    from ._paths import check_output_dir
    from ._unlearn import DEFAULT, domain_of, preset_of, registered_method, result_to_dict, unlearn
    from ._unlearning_method import resolve_profile
    from ._validate import check_seed, method_hparams

    if args.out is not None:
        check_output_dir(args.out, sources=[args.run_dir], what="--out", must_be_empty=True)
    check_seed(args.seed, "--seed")
    method = _method_entry(args.method).obj
    method_hparams(method, resolve_profile(method, args.profile, preset_of(args.run_dir)), _hparams(args.set), what="--set")

    if args.sweep is not None:
        return _cmd_sweep(args)
    domain = domain_of(registered_method(args.method)[1])
    given = {"forget_rate": args.forget_rate, "forget_classes": args.forget_class, "forget_split": args.forget_split,
             "lora": args.lora or None}
    options = {k: v for k, v in given.items() if v is not None}
    target = DEFAULT if args.target is None else args.target
    with contextlib.redirect_stdout(sys.stderr):  # a reference model's training may print: stdout stays ours
        result = unlearn(
            args.method, source=args.run_dir, start=args.start, seed=args.seed, target=target,
            hparams=_hparams(args.set), profile=args.profile, fallback=args.fallback, output_dir=args.out, **options,
        )
    info = {**result_to_dict(result), **domain.result_fields(result)}
    note = note_for_result(method, info)
    if args.json:
        print(_json({**info, "note": note}))
        return 0
    steps = info["steps_to_target"] if info["steps_applicable"] else "n/a (one-shot)"
    where = f" on {info['forget_split']}" if info.get("forget_split") else ""
    print(f"method {info['method']} from θ_{info['start']} (step {info['start_step']}){where}, target forget_acc ≤ "
          f"{info['target_forget_acc'] if info['target_forget_acc'] is not None else '—'}")
    print(f"steps_to_target: {steps if steps is not None else 'not reached'}  (updates run: {info['total_steps']})")
    for key in domain.report_keys:
        if isinstance(info.get(key), (int, float)):
            print(f"{key:<19} {info[key]:.4f}")
    if note:
        print(note)
    if args.out:
        print(f"written: {args.out}")
    return 0


def _compare_hparams(pairs: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        method, dot, rest = pair.partition(".")
        if not dot or not method or "=" not in rest:
            raise UsageError(f"--set expects METHOD.NAME=VALUE (e.g. ga.epochs=40), got {pair!r}")
        out.setdefault(method, {}).update(_hparams([rest]))
    return out


def _cmd_compare(args: argparse.Namespace) -> int:
    from ._paths import check_output_dir
    from ._validate import check_positive_int, check_seed, method_hparams
    from .compare import DEFAULT_PRIMARY, compare
    from .compare._report import render_markdown

    if args.out is not None:
        check_output_dir(args.out, sources=[args.run_dir], what="--out")

    try:
        rates = [_rate(v) for v in args.forget_rates.split(",") if v.strip()] if args.forget_rates else None
    except argparse.ArgumentTypeError as exc:
        raise UsageError(str(exc)) from None
    text = args.seeds.strip()
    try:
        seeds: int | list[int] = [int(v) for v in text.split(",") if v.strip()] if "," in text else int(text)
    except ValueError:
        raise UsageError(f"--seeds expects a count (3) or a list of seeds (0,1,5), got {args.seeds!r}") from None
    if isinstance(seeds, int):
        check_seed(check_positive_int(seeds, "--seeds (a count)") - 1, "--seeds (a count)")
    else:
        seeds = [check_seed(v, "each of --seeds") for v in seeds]
    check_seed(args.bootstrap_seed, "--bootstrap-seed")
    check_positive_int(args.n_boot, "--n-boot")
    set_values = _compare_hparams(args.set)
    for method, values in set_values.items():
        method_hparams(_method_entry(method).obj, args.profile, values, what=f"--set {method}.")
    started = time.perf_counter()
    result = compare(
        args.run_dir, args.methods, seeds=seeds, forget_rates=rates, out=args.out,
        targets=args.targets.split(",") if args.targets else None, primary=args.primary or DEFAULT_PRIMARY,
        hparams=set_values, profile=args.profile, fallback=args.fallback, pre=args.pre, n_boot=args.n_boot,
        bootstrap_seed=args.bootstrap_seed, progress=False if args.no_progress else None, plots=args.plots,
        analysis=args.analysis, recompute=args.recompute,
    )
    wall = round(time.perf_counter() - started, 1)
    if "run" not in result.results:  # a rank other than 0 of a sharded compare: rank 0 reports
        print(f"{' '.join(result.summary)} ({result.n_computed} computed, {result.n_reused} reused; {wall} s)",
              file=sys.stderr)
        return 0
    files = {k: str(v) for k, v in result.paths.items()}
    if args.json:
        print(_json({"out_dir": str(result.out_dir), "files": files, "plots": [str(p) for p in result.plots],
                     "n_computed": result.n_computed, "n_reused": result.n_reused, "wall_seconds": wall,
                     "summary": result.summary}))
        return 0
    print(render_markdown(result.results))
    print(f"cells: {result.n_computed} computed, {result.n_reused} reused; wall time {wall} s")
    print(f"written: {', '.join(files.values())}" + (f"; plots: {', '.join(map(str, result.plots))}" if result.plots else ""))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_checkpoint, read_export_info

    options = dict(_hparams(args.option))
    out = export_checkpoint(args.run_dir, args.out, args.start, fallback=args.fallback, **options)
    info = read_export_info(out)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True, default=str))
        return 0
    print(f"exported θ_{info['phase']} (step {info['step']}, {info['format']}) of {args.run_dir} to {out}")
    print(f"source sha256: {info['source_sha256']}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(out_dir=Path(args.out), suite=args.suite, progress=not args.no_progress)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="grokplug", description="Grok-aware starting checkpoints for machine unlearning.")
    parser.add_argument("--version", action="version", version=f"grokplug {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("plugins", help="list plugins, methods, metrics and presets")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("train", help="train a preset with tracking (resumes an unfinished run)")
    p.add_argument("preset", help="preset name (see `grokplug plugins`)")
    p.add_argument("--run-dir", required=True, type=Path, help="where the run is written")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=None, help="training budget (default: the preset's)")
    p.add_argument("--control", default=None, help="train the preset's no-grok control (e.g. no-grok)")
    p.add_argument("--dense", action="store_true", help="keep every checkpoint (no retention pruning)")
    p.add_argument("--grokfast", action="store_true", help="enable the Grokfast EMA gradient filter")
    p.add_argument("--orthograd", action="store_true", help="enable ⊥Grad (gradient orthogonal to the weights)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --run-dir")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("inspect", help="phase report of a run (label, θ_pre, θ_grok), optionally a plot")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="write training curves with phases")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="provider option for runs grokplug did not write, e.g. val_metric=eval_accuracy")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("unlearn", help="run one unlearning method from θ_pre or θ_grok of a run")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--method", required=True, help="method name (see `grokplug plugins`)")
    p.add_argument("--start", choices=("pre", "pre-matched", "grok", "final", "best"), default="grok",
                   help="pre: θ_pre by early stopping (the paper's rule); pre-matched: θ_pre from t_mem (matched train)")
    p.add_argument("--forget-rate", type=_rate, default=None, help="fraction of forget-eligible samples (default 0.15)")
    p.add_argument("--forget-class", type=int, action="append", default=None, help="forget a whole class (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", default=None,
                   help="forget-acc target: a number, test, frac:F, retrain or none (default: test for vision, retrain for LLM)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="method hyperparameter")
    p.add_argument("--profile", choices=("auto", "offline", "cifar"), default="auto",
                   help="hyperparameter profile: auto (the method's profile for the run's preset, else offline), "
                        "offline or cifar (default: auto)")
    p.add_argument("--fallback", default=None, help="phase to use if --start grok but the run never grokked")
    p.add_argument("--out", type=Path, default=None, help="write the unlearned model + result.json to this new dir")
    p.add_argument("--sweep", default=None, metavar="V1,V2,...",
                   help="one-shot methods: run once per strength value (weakest first) instead of counting steps")
    p.add_argument("--forget-split", default=None, choices=("forget01", "forget05", "forget10"),
                   help="LLM methods: the TOFU forget split (default forget10)")
    p.add_argument("--lora", action="store_true", help="LLM methods: unlearn through a LoRA adapter")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_unlearn)

    p = sub.add_parser("compare", help="θ_pre vs θ_grok × methods × seeds × forget rates, with paired statistics")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--methods", default="ft,ga,scrub,fisher,nabla-tau",
                   help="comma-separated method names (default: the paper's ft,ga,scrub,fisher,nabla-tau)")
    p.add_argument("--seeds", default="3", help="a count N (seeds 0..N-1) or a list 0,1,5 (default: 3)")
    p.add_argument("--forget-rates", default=None,
                   help="comma-separated rates in (0, 1) (default: 0.15,0.5 for vision; 0.1 = forget10 for TOFU runs, "
                        "which take 0.01, 0.05, 0.1)")
    p.add_argument("--out", type=Path, default=None, help="output dir, reused when resuming (default: <run>-compare)")
    p.add_argument("--targets", default=None,
                   help="comma-separated forget-acc targets: frac:F, a number, test, retrain "
                        "(default: frac:0.9,frac:0.75,frac:0.5,frac:0.25, and test for vision runs)")
    p.add_argument("--primary", default=None, help="the target for the headline numbers (default: frac:0.5)")
    p.add_argument("--set", action="append", default=[], metavar="METHOD.NAME=VALUE", help="method hyperparameter")
    p.add_argument("--profile", choices=("auto", "offline", "cifar"), default="auto",
                   help="hyperparameter profile: auto (the method's profile for the run's preset, else offline), "
                        "offline or cifar (default: auto)")
    p.add_argument("--fallback", default=None, help="phase to use as θ_grok if the run never grokked (e.g. final)")
    p.add_argument("--pre", choices=("pre", "pre-matched"), default="pre",
                   help="which θ_pre rule serves the pre start: pre (early stop, default) or pre-matched (matched train)")
    p.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples (default: 10000)")
    p.add_argument("--bootstrap-seed", type=int, default=0)
    p.add_argument("--recompute", action="store_true", help="ignore cached cells")
    p.add_argument("--plots", action="store_true", help="also write the figures")
    p.add_argument("--analysis", action="store_true", help="also compute θ_pre/θ_grok analysis metrics (CKA, alignment, curvature)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of the tables")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("export", help="write θ_pre/θ_grok as a directory other toolkits load (HF model dir or safetensors)")
    p.add_argument("run_dir", type=Path, help="a grokplug run dir, or any source a plugin serves (HF Trainer output dir)")
    p.add_argument("--start", default="grok", help="grok, pre, final, best or a step number (default: grok)")
    p.add_argument("--out", type=Path, required=True, help="the new directory to write (never overwritten)")
    p.add_argument("--fallback", default=None, help="phase to export if --start grok but the run never grokked")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="provider option, e.g. val_metric=eval_accuracy for an HF Trainer output dir")
    p.add_argument("--json", action="store_true", help="print the recorded provenance as JSON")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("demo", help="the end-to-end demo on the built-in offline presets")
    p.add_argument("--out", default="runs/demo", help="where runs and plots go (reused if present)")
    p.add_argument("--suite", choices=("paper", "plateau"), default="paper",
                   help="paper: digits-noisy, the paper's regime (default); plateau: the modular/digits demo")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_demo)
    return parser


def _version() -> str:
    from ._version import __version__

    return __version__


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    print(f"grokplug: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("default", GrokplugWarning)
        warnings.showwarning = _show_warning
        try:
            with stop_cleanly():
                args = build_parser().parse_args(argv)
                return int(args.func(args) or 0)
        except GrokplugError as exc:
            print(f"grokplug: error: {_rank_prefix()}{' '.join(str(exc).split())}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("grokplug: interrupted", file=sys.stderr)
            return 130
        except Terminated:
            print(f"grokplug: {_rank_prefix()}stopped by SIGTERM (under a launcher: another rank failed or the job "
                  "was cancelled); nothing unfinished was published, and a rerun reuses what was", file=sys.stderr)
            return 143


def _rank_prefix() -> str:
    """``rank R of W: `` under a launcher (which rank said it), else nothing."""
    world, rank = os.environ.get("WORLD_SIZE", "1"), os.environ.get("RANK", "0")
    return f"rank {rank} of {world}: " if world.isdigit() and int(world) > 1 else ""


if __name__ == "__main__":
    sys.exit(main())
