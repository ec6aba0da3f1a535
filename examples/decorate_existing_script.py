"""Start an existing unlearning function from θ_pre or θ_grok with one decorator.

    grokplug train modular --run-dir runs/m          # once: a tracked run that groks
    python examples/decorate_existing_script.py --run-dir runs/m

`gradient_ascent` below stands for any unlearning code you already have: it takes a model and data
and knows nothing about grokplug. `grokplug.grok_aware(run_dir, phase=...)` fills the model with the
requested checkpoint before each call (and fires the before/after-unlearn hooks).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import grokplug


# --- an existing unlearning method, unchanged --------------------------------------------------
def gradient_ascent(model, forget_x, forget_y, steps=10, lr=1e-3):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        (-F.cross_entropy(model(forget_x), forget_y)).backward()
        optimizer.step()
    return model
# ------------------------------------------------------------------------------------------------


@torch.no_grad()
def accuracy(model, x, y):
    return float((model(x).argmax(-1) == y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--forget-rate", type=float, default=0.15)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    run = grokplug.RunDir(args.run_dir)
    preset = grokplug.get_plugin_manager().presets.get(run.config["preset"])
    data = preset.make_data(run.config, run.seed)
    n_forget = max(1, int(args.forget_rate * len(data.forget_eligible)))
    order = torch.randperm(len(data.forget_eligible), generator=torch.Generator().manual_seed(args.seed))
    forget = torch.tensor(data.forget_eligible)[order[:n_forget]]
    retain = torch.ones(len(data.train_y), dtype=torch.bool)
    retain[forget] = False

    print(f"{'start':<6} {'step':>6} {'forget acc':>11} {'retain acc':>11} {'val acc':>8}   (after {args.steps} ascent steps)")
    for phase in ("pre", "grok"):
        unlearn = grokplug.grok_aware(args.run_dir, phase=phase, fallback="final")(gradient_ascent)
        model = grokplug.build_model(args.run_dir)  # the run's architecture, untrained
        torch.manual_seed(args.seed)
        unlearn(model, data.train_x[forget], data.train_y[forget], steps=args.steps)
        start = grokplug.request_checkpoint(args.run_dir, phase, fallback="final")
        print(
            f"{phase:<6} {start.step:>6} {accuracy(model, data.train_x[forget], data.train_y[forget]):>11.3f} "
            f"{accuracy(model, data.train_x[retain], data.train_y[retain]):>11.3f} {accuracy(model, data.val_x, data.val_y):>8.3f}"
        )


if __name__ == "__main__":
    main()
