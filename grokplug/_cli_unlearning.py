"""The `grokplug` commands that unlearn: `unlearn`, `sweep` and `compare` (parsers in grokplug/cli.py)."""

from __future__ import annotations

import argparse
import sys
import time

from ._cli_common import json_text, method_entry, parse_compare_hparams, parse_hparams, parse_rate
from .errors import UsageError

__all__ = ["cmd_compare", "cmd_sweep", "cmd_unlearn"]


def cmd_sweep(args: argparse.Namespace) -> int:
    from ._sweep import sweep_strength
    from ._validate import check_strengths

    try:
        values = [float(v) for v in args.sweep.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--sweep expects numbers separated by commas, got {args.sweep!r}") from None
    values = check_strengths(values, "--sweep strength")
    info = sweep_strength(
        args.method, values, source=args.run_dir, start=args.start, seed=args.seed, target=args.target or "test",
        hparams=parse_hparams(args.set), profile=args.profile, forget_rate=args.forget_rate,
        forget_classes=args.forget_class, fallback=args.fallback,
    )
    if args.json:
        print(json_text(info))
        return 0
    print(f"{info['method']} from θ_{args.start}: sweeping {info['strength_param']}")
    for point in info["points"]:
        print(f"  {point['strength']:>10g}  forget {point['forget_acc']:.3f}  retain {point['retain_acc']:.3f}  "
              f"test {point.get('test_acc', float('nan')):.3f}{'  ← target reached' if point['reached'] else ''}")
    print(f"strength_to_target: {info['strength_to_target']}")
    return 0


def cmd_unlearn(args: argparse.Namespace) -> int:
    import contextlib

    from ._advice import note_for_result
    from ._paths import check_output_dir
    from ._unlearn import DEFAULT, domain_of, preset_of, registered_method, result_to_dict, unlearn
    from ._unlearning_method import resolve_profile
    from ._validate import check_seed, method_hparams

    if args.out is not None:
        check_output_dir(args.out, sources=[args.run_dir], what="--out", must_be_empty=True)
    check_seed(args.seed, "--seed")
    method = method_entry(args.method).obj
    method_hparams(method, resolve_profile(method, args.profile, preset_of(args.run_dir)), parse_hparams(args.set), what="--set")

    if args.sweep is not None:
        return cmd_sweep(args)
    domain = domain_of(registered_method(args.method)[1])
    given = {"forget_rate": args.forget_rate, "forget_classes": args.forget_class, "forget_split": args.forget_split,
             "lora": args.lora or None}
    options = {k: v for k, v in given.items() if v is not None}
    target = DEFAULT if args.target is None else args.target
    with contextlib.redirect_stdout(sys.stderr):  # a reference model's training may print: stdout stays ours
        result = unlearn(
            args.method, source=args.run_dir, start=args.start, seed=args.seed, target=target,
            hparams=parse_hparams(args.set), profile=args.profile, fallback=args.fallback, output_dir=args.out, **options,
        )
    info = {**result_to_dict(result), **domain.result_fields(result)}
    note = note_for_result(method, info)
    if args.json:
        print(json_text({**info, "note": note}))
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


def cmd_compare(args: argparse.Namespace) -> int:
    from ._paths import check_output_dir
    from ._validate import check_positive_int, check_seed, method_hparams
    from .compare import DEFAULT_PRIMARY, compare
    from .compare._report import render_markdown

    if args.out is not None:
        check_output_dir(args.out, sources=[args.run_dir], what="--out")

    try:
        rates = [parse_rate(v) for v in args.forget_rates.split(",") if v.strip()] if args.forget_rates else None
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
    set_values = parse_compare_hparams(args.set)
    for method, values in set_values.items():
        method_hparams(method_entry(method).obj, args.profile, values, what=f"--set {method}.")
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
        print(json_text({"out_dir": str(result.out_dir), "files": files, "plots": [str(p) for p in result.plots],
                     "n_computed": result.n_computed, "n_reused": result.n_reused, "wall_seconds": wall,
                     "summary": result.summary}))
        return 0
    print(render_markdown(result.results))
    print(f"cells: {result.n_computed} computed, {result.n_reused} reused; wall time {wall} s")
    print(f"written: {', '.join(files.values())}" + (f"; plots: {', '.join(map(str, result.plots))}" if result.plots else ""))
    return 0
