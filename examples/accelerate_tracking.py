"""Track a training run under `accelerate launch` (any number of processes, CPU or GPU).

    accelerate launch --num_processes 2 --multi_gpu examples/accelerate_tracking.py --run-dir runs/acc --cpu

Rank 0 writes the run directory; every rank ends with the same phase report.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from accelerate import Accelerator

import grokplug


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--preset", default="modular")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--cpu", action="store_true", help="force CPU (gloo) even if a GPU is present")
    args = parser.parse_args()

    accelerator = Accelerator(cpu=args.cpu)
    preset = grokplug.get_plugin_manager().presets.get(args.preset)
    config = preset.resolve_config({"max_steps": args.max_steps} if args.max_steps else None)
    data = preset.make_data(config, 0)
    model = preset.make_model(config, 0)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"], betas=tuple(config["betas"])
    )
    model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device
    x, y = data.train_x.to(device), data.train_y.to(device)

    tracker = grokplug.GrokTracker(args.run_dir, config=config, seed=0, splits=data, accelerator=accelerator)
    every = int(config["eval_every"])
    start = tracker.restore(accelerator.unwrap_model(model), optimizer)  # every rank resumes at the same step
    for step in range(start, int(config["max_steps"]) + 1):
        if step % every == 0 and not (start and step == start):
            metrics = grokplug.evaluate_preset(accelerator.unwrap_model(model), data, config)
            tracker.log_eval(step, model=accelerator.unwrap_model(model), **metrics)
        if step == int(config["max_steps"]):
            break
        optimizer.zero_grad()
        accelerator.backward(grokplug.preset_loss(config, model(x), y, data.num_classes))
        tracker.before_optimizer_step(model, step)
        optimizer.step()
    report = tracker.close()
    line = json.dumps({"rank": accelerator.process_index, "is_main": accelerator.is_main_process, "report": report.to_dict()})
    # one write per line (< PIPE_BUF, so atomic): print() may split text and newline, and two ranks
    # sharing one stdout pipe could then interleave their lines
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    # When one rank fails, the others see it in a collective or get torchrun's SIGTERM: unwind (the
    # tracker's saves are atomic, its lock is released) and say so on one line; rerun to resume.
    try:
        with grokplug.stop_cleanly():
            main()
    except grokplug.Terminated:
        sys.exit("accelerate_tracking: stopped by SIGTERM (another rank failed or the job was cancelled); "
                 "rerun with the same --run-dir to resume")
    except grokplug.GrokplugError as exc:
        sys.exit(f"accelerate_tracking: {exc}; rerun with the same --run-dir to resume")
