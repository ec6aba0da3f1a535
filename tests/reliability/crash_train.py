"""A tiny tracked training run for the crash tests: run as a script (the process that gets killed), or
``train()`` in-process (the resume, and the uninterrupted reference).

    python crash_train.py RUN_DIR [--pause-at STEP --pause-in weights|manifest|loop|held --ready FILE]

With ``--pause-at`` the process stops at that step, creates FILE and sleeps until it is killed:

* ``weights``: half-way through writing the checkpoint's ``model.safetensors`` (in its temp folder);
* ``manifest``: after the checkpoint folder was renamed into place, half-way through writing the
  manifest update that would publish it;
* ``loop``: in the training loop, after the checkpoint was written, holding the run's writer lock;
* ``held``: in the training loop without a flush, with the tracker's default ``resume_every_s``: saves
  kept only as the resume point are still held in memory when the kill comes.

Otherwise the tracker writes every save (``resume_every_s=0``), so the kill lands in the save of a known step.

Only *where* it stops is arranged here; the kill is a real SIGKILL from the test.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save

import grokplug
from grokplug import _durability, _rundir, _store
from grokplug._atomic import atomic_path

STEPS, EVAL_EVERY = 200, 10
CONFIG = {"task": "crash-test", "max_steps": STEPS}


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 8, generator=g)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
    return x[:64], y[:64], x[64:], y[64:]


def train(
    run_dir: str | os.PathLike[str],
    on_log: Callable[[int, grokplug.GrokTracker], None] | None = None,
    resume_every_s: float = 0.0,
) -> torch.nn.Module:
    """Train (or resume) the run; full-batch and seeded, so a resumed run ends where a straight one does."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    tx, ty, vx, vy = _data()
    tracker = grokplug.GrokTracker(run_dir, config=CONFIG, seed=0, save_every=EVAL_EVERY, resume_every_s=resume_every_s)
    with tracker:
        step = tracker.restore(model, opt)

        def log(at: int) -> None:
            with torch.no_grad():
                train_acc = float((model(tx).argmax(-1) == ty).float().mean())
                val_acc = float((model(vx).argmax(-1) == vy).float().mean())
            tracker.log_eval(at, train_acc=train_acc, val_acc=val_acc, model=model, optimizer=opt)
            if on_log is not None:
                on_log(at, tracker)

        if step == 0:
            log(0)
        while step < STEPS:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(tx), ty).backward()
            opt.step()
            step += 1
            if step % EVAL_EVERY == 0:
                log(step)
    return model


def _stop_here(ready: Path) -> None:
    ready.touch()
    time.sleep(600)  # the test kills us long before this ends


def _pause_in_weights(step: int, ready: Path) -> None:
    real = _store.write_safetensors

    def write_safetensors(tensors, path, metadata=None):  # noqa: ANN001, ANN202
        if Path(path).name == _store.WEIGHTS and Path(path).parent.name.startswith(f".tmp-{step:08d}-"):
            data = save(dict(tensors), metadata=dict(metadata) if metadata else None)
            with open(path, "wb") as fh:  # half the bytes are on disk when the kill comes
                fh.write(data[: len(data) // 2])
                fh.flush()
                os.fsync(fh.fileno())
            _stop_here(ready)
        return real(tensors, path, metadata)

    _store.write_safetensors = write_safetensors  # the weights are written through it


def _pause_in_manifest(step: int, ready: Path) -> None:
    real = _durability.write_json_atomic

    def write_json_atomic(target, obj, **kwargs):  # noqa: ANN001, ANN202
        if Path(target).name == _rundir.MANIFEST and str(step) in obj.get("checkpoints", {}):
            data = json.dumps(obj).encode()
            with atomic_path(target) as tmp:  # the same temp-then-rename a real manifest write uses
                tmp.write_bytes(data[: len(data) // 2])
                _stop_here(ready)
        return real(target, obj, **kwargs)

    _durability.write_json_atomic = write_json_atomic  # the manifest is written through _durability


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--pause-at", type=int, default=None)
    parser.add_argument("--pause-in", choices=("weights", "manifest", "loop", "held"), default="loop")
    parser.add_argument("--ready", type=Path, default=None)
    args = parser.parse_args()
    on_log = None
    resume_every_s = 0.0
    if args.pause_at is not None:
        assert args.ready is not None
        if args.pause_in == "weights":
            _pause_in_weights(args.pause_at, args.ready)
        elif args.pause_in == "manifest":
            _pause_in_manifest(args.pause_at, args.ready)
        elif args.pause_in == "held":
            resume_every_s = 30.0  # the default; the run is far shorter

            def on_log(at: int, tracker: grokplug.GrokTracker) -> None:
                if at == args.pause_at:
                    tracker._writer.flush()  # the writer is idle (not mid-save); a held save stays held
                    _stop_here(args.ready)
        else:
            def on_log(at: int, tracker: grokplug.GrokTracker) -> None:
                if at == args.pause_at:
                    tracker.flush()  # the checkpoint of this step is complete; the lock is still held
                    _stop_here(args.ready)
    train(args.run_dir, on_log, resume_every_s)


if __name__ == "__main__":
    main()
