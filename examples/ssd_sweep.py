"""Sweep SSD's two knobs, α (selection_weighting) and λ (dampening_constant), from θ_pre and θ_grok.

Runs the upstream ``ParameterPerturber`` of a selective-synaptic-dampening checkout unchanged through
:class:`grokplug.adapters.PerturberAdapter` (its unused ``wandb``/``seaborn`` imports stubbed when they are
not installed) on a preset run, 15 % random forgetting, seed 0, and prints forget / retain / test accuracy
per value as a markdown table::

    python examples/ssd_sweep.py --ssd-src selective-synaptic-dampening/src --run-dir runs/d
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import time

import torch

import grokplug
from grokplug.adapters import SSD_PARAMETERS, PerturberAdapter, load_toolkit, stub_module

ALPHAS = [100.0, 30.0, 10.0, 5.0, 2.0, 1.0]  # λ = 1
LAMBDAS = [10.0, 1.0, 0.1, 0.01, 0.001]  # α = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ssd-src", required=True, help="the checkout's src/ folder (holds ssd.py)")
    parser.add_argument("--run-dir", required=True, help="a preset run (e.g. grokplug train digits)")
    parser.add_argument("--forget-rate", type=float, default=0.15)
    args = parser.parse_args()
    torch.set_num_threads(1)

    def without_missing_unused_imports(toolkit: object) -> None:
        for name in ("wandb", "seaborn"):  # imported by ssd.py, never used
            if importlib.util.find_spec(name) is None:
                stub_module(toolkit, name)

    checkout = load_toolkit(args.ssd_src, "ssd", prepare=without_missing_unused_imports)
    started = time.perf_counter()
    print("| start | swept | value | forget_acc | retain_acc | test_acc |\n| --- | --- | --- | --- | --- | --- |")
    for start in ("pre", "grok"):
        before = grokplug.unlearn("ft", source=args.run_dir, start=start, seed=0, target=None,  # any method: its
                                  forget_rate=args.forget_rate, hparams={"epochs": 0})  # start_metrics are the start's
        m = before.metrics["start_metrics"]
        print(f"| θ_{start} | (start) | — | {m['forget_acc']:.3f} | {m['retain_acc']:.3f} | {m['test_acc']:.3f} |")
        for knob, values, fixed in (("selection_weighting", ALPHAS, {"dampening_constant": 1.0}),
                                    ("dampening_constant", LAMBDAS, {"selection_weighting": 10.0})):
            adapter = PerturberAdapter(checkout["ssd"].ParameterPerturber, parameters={**SSD_PARAMETERS, **fixed},
                                       strength_param=knob)
            with contextlib.redirect_stdout(io.StringIO()):  # ParameterPerturber prints its parameters
                sweep = grokplug.sweep_strength(adapter, values, source=args.run_dir, start=start, seed=0,
                                                target="frac:0.5", forget_rate=args.forget_rate)
            for point in sweep["points"]:
                name = "α" if knob == "selection_weighting" else "λ"
                print(f"| θ_{start} | {name} | {point['strength']:g} | {point['forget_acc']:.3f} | "
                      f"{point['retain_acc']:.3f} | {point['test_acc']:.3f} |", flush=True)
    print(f"\nwall: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
