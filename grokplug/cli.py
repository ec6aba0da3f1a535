"""``grokplug`` command line: plugins | train | inspect | unlearn | compare | export | demo.

Handled errors print one line (``grokplug: error: ...``) and exit with the error's code (2 for misuse).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ._cli_common import parse_rate
from ._cli_runs import cmd_demo, cmd_export, cmd_inspect, cmd_plugins, cmd_train
from ._cli_unlearning import cmd_compare, cmd_unlearn
from ._signals import Terminated, stop_cleanly
from .errors import GrokplugError, GrokplugWarning, UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="grokplug", description="Grok-aware starting checkpoints for machine unlearning.")
    parser.add_argument("--version", action="version", version=f"grokplug {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("plugins", help="list plugins, methods, metrics and presets")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_plugins)

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
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("inspect", help="phase report of a run (label, θ_pre, θ_grok), optionally a plot")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="write training curves with phases")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="provider option for runs grokplug did not write, e.g. val_metric=eval_accuracy")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("unlearn", help="run one unlearning method from θ_pre or θ_grok of a run")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--method", required=True, help="method name (see `grokplug plugins`)")
    p.add_argument("--start", choices=("pre", "pre-matched", "grok", "final", "best"), default="grok",
                   help="pre: θ_pre by early stopping (the paper's rule); pre-matched: θ_pre from t_mem (matched train)")
    p.add_argument("--forget-rate", type=parse_rate, default=None, help="fraction of forget-eligible samples (default 0.15)")
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
    p.set_defaults(func=cmd_unlearn)

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
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("export", help="write θ_pre/θ_grok as a directory other toolkits load (HF model dir or safetensors)")
    p.add_argument("run_dir", type=Path, help="a grokplug run dir, or any source a plugin serves (HF Trainer output dir)")
    p.add_argument("--start", default="grok", help="grok, pre, final, best or a step number (default: grok)")
    p.add_argument("--out", type=Path, required=True, help="the new directory to write (never overwritten)")
    p.add_argument("--fallback", default=None, help="phase to export if --start grok but the run never grokked")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="provider option, e.g. val_metric=eval_accuracy for an HF Trainer output dir")
    p.add_argument("--json", action="store_true", help="print the recorded provenance as JSON")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("demo", help="the end-to-end demo on the built-in offline presets")
    p.add_argument("--out", default="runs/demo", help="where runs and plots go (reused if present)")
    p.add_argument("--suite", choices=("paper", "plateau"), default="paper",
                   help="paper: digits-noisy, the paper's regime (default); plateau: the modular/digits demo")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)
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
