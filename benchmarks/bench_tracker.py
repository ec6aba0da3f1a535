"""Section 2, tracker overhead: the same training loop with and without GrokTracker.

Evaluation is excluded: the tracked loop feeds the tracker a synthetic grokking curve (train fits
early, val rises later), so the detector, the retention policy and the protected candidates behave as
in a real run, but no time goes into evaluating the model (that cost is the user's, not grokplug's).
Everything else the tracker does is timed: the gradient-transform hook every step, history and
detector every eval, weight (+ optimizer) snapshots and saves every ``save_every`` steps, retention,
and ``close()`` (waits for writes, detects phases, pins θ_pre/θ_grok).

* ``modular`` MLP: the worst case (a full-batch step takes a few ms, so fixed costs show);
* ``tofu-tiny``: the HF ``Trainer`` run of the tiny Llama, with and without ``GrokTrackerCallback``.

Both wall time and process CPU time (all threads, including the background saver) are recorded:
on a shared machine the CPU ratio is the steadier estimate of what the tracker costs.
"""

from __future__ import annotations

import gc
import shutil
import time
from collections.abc import Callable
from typing import Any

import torch
from _common import Context, clock, fmt_spread, grok_curve, ratios, side_by_side, spread, table, target

TOFU_TARGET_PCT = 2.0  # ≤ 2 % overhead on tofu-tiny
MODULAR_TARGET_PCT = 5.0  # ≤ 5 % wall on modular, the worst case (6 ms steps, checkpoint every 20)


class DirectCost:
    """Seconds spent inside grokplug: its calls on the training thread (wall) plus the saver thread's CPU.

    The A/B ratio is what the issue asks for, but on a shared machine its noise (a few %) can exceed the
    cost itself; this attribution is immune to other jobs' load (it misses indirect effects such as cache
    pollution, and close()'s wait for the last write is counted twice: an upper bound).
    """

    def __init__(self) -> None:
        self.seconds = 0.0

    def timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
        return wrapper

    def watch_saver(self, tracker: Any) -> None:
        """Add the CPU time of each background save job (only for async saving: inline jobs are already timed)."""
        submit = tracker._writer.submit

        def timed_submit(job: Callable[[], None]) -> None:
            def timed_job() -> None:
                started = time.thread_time()
                try:
                    job()
                finally:
                    self.seconds += time.thread_time() - started
            submit(timed_job)

        tracker._writer.submit = timed_submit


def _summarise(times: dict[str, list[clock]], base: str, steps: int) -> dict[str, Any]:
    out: dict[str, Any] = {"steps": steps, "variants": {}}
    for name, clocks in times.items():
        wall, cpu = [c.wall for c in clocks], [c.cpu for c in clocks]
        entry = {"wall_s": spread(wall), "cpu_s": spread(cpu), "raw_wall": wall, "raw_cpu": cpu}
        if name != base:
            entry["overhead_wall"] = spread([r - 1 for r in ratios(wall, [c.wall for c in times[base]])])
            entry["overhead_cpu"] = spread([r - 1 for r in ratios(cpu, [c.cpu for c in times[base]])])
            direct = [getattr(c, "direct", None) for c in clocks]
            if all(d is not None for d in direct):
                entry["direct_s"] = spread(direct)
                entry["overhead_direct"] = spread(ratios(direct, [c.wall for c in times[base]]))
        out["variants"][name] = entry
    return out


def _rows(label: str, summary: dict[str, Any], names: dict[str, str]) -> list[list[str]]:
    per_step = 1e3 / summary["steps"]
    rows = []
    for key, text in names.items():
        v = summary["variants"][key]
        rows.append([f"{label}{text}", fmt_spread(v["wall_s"], per_step, 3), fmt_spread(v["cpu_s"], per_step, 3),
                     fmt_spread(v["overhead_wall"], 100, 1, " %") if "overhead_wall" in v else "–",
                     fmt_spread(v["overhead_cpu"], 100, 1, " %") if "overhead_cpu" in v else "–",
                     fmt_spread(v["overhead_direct"], 100, 2, " %") if "overhead_direct" in v else "–"])
    return rows


def _modular(ctx: Context, steps: int, save_every: int, eval_every: int) -> dict[str, Any]:
    from grokplug import GrokTracker
    from grokplug._train import preset_loss
    from grokplug.plugins import get_plugin_manager

    preset = get_plugin_manager().presets.get("modular")
    config = preset.resolve_config()
    data = preset.make_data(config, 0)
    counter = {"n": 0}

    def loop(tracked: bool, async_save: bool = True) -> clock:
        model = preset.make_model(config, 0)
        opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"],
                                betas=tuple(config["betas"]))
        counter["n"] += 1
        run_dir = ctx.work / "tracker" / f"run-{counter['n']}"
        meter = DirectCost()
        gc.collect()  # start every variant from the same heap state (garbage of earlier runs skews timings)
        with clock() as c:
            tracker = meter.timed(GrokTracker)(run_dir, config=config, seed=0, splits=data, save_every=save_every,
                                               async_save=async_save) if tracked else None
            if tracker is not None and async_save:
                meter.watch_saver(tracker)
            before = meter.timed(tracker.before_optimizer_step) if tracker is not None else None
            log = meter.timed(tracker.log_eval) if tracker is not None else None
            for step in range(steps):
                opt.zero_grad(set_to_none=True)
                loss = preset_loss(config, model(data.train_x), data.train_y, data.num_classes)
                loss.backward()
                if before is not None:
                    before(model, step)
                opt.step()
                done = step + 1
                if log is not None and done % eval_every == 0:
                    log(done, model=model, optimizer=opt, **grok_curve(done, t_mem=50, t_gen=steps // 2))
            if tracker is not None:
                meter.timed(tracker.close)()
        if tracked:
            c.direct = meter.seconds
        shutil.rmtree(run_dir, ignore_errors=True)
        return c

    loop(False)  # warm-up: first-call costs (allocator, lazy imports) are nobody's overhead
    loop(True)
    variants: dict[str, Callable[[], clock]] = {
        "bare": lambda: loop(False), "async": lambda: loop(True, True), "sync": lambda: loop(True, False)}
    # 10 repeats: on this shared VM a bare run alone varies by ±3 % between repeats, as much as the cost
    repeats = ctx.reps(10, 1)
    out = _summarise(side_by_side(variants, repeats), "bare", steps)
    out.update(save_every=save_every, eval_every=eval_every, repeats=repeats)
    return out


def _tofu_preset(pm: Any) -> Any:
    """The registered tofu-tiny preset (or its module's object, while it is not registered yet)."""
    try:
        return pm.presets.get("tofu-tiny")
    except Exception:  # noqa: BLE001
        from grokplug.llm.preset import TOFU_TINY

        return TOFU_TINY


def _tofu_tiny(ctx: Context) -> dict[str, Any]:
    """The tofu-tiny Trainer run with and without GrokTrackerCallback (synthetic metrics: evaluation excluded)."""
    try:
        from grokplug.llm.finetune import tofu_data, training_arguments
        from grokplug.llm.model import model_from_config
        from grokplug.plugins import get_plugin_manager

        preset = _tofu_preset(get_plugin_manager())
    except Exception as exc:  # noqa: BLE001 - the preset comes from another issue; say why, never fake it
        return {"status": "not run", "why": f"the tofu-tiny preset is not available ({type(exc).__name__}: {exc})"}
    from transformers import PrinterCallback, Trainer

    from grokplug import GrokTracker, GrokTrackerCallback

    steps = ctx.pick(200, 20)
    config = preset.resolve_config({"max_steps": steps})
    eval_every = int(config["eval_every"]) if not ctx.quick else 10
    save_every = int(config.get("save_every", eval_every)) if not ctx.quick else 10
    data = tofu_data(config, 0)
    config["vocab_size"] = len(data.tokenizer)
    counter = {"n": 0}

    def loop(tracked: bool) -> clock:
        model = model_from_config(config, data.tokenizer, 0)
        counter["n"] += 1
        scratch = ctx.work / "tracker" / f"trainer-{counter['n']}"
        trainer = Trainer(model=model, args=training_arguments(config, 0, str(scratch), progress=False),
                          train_dataset=data.train, data_collator=data.collator)
        trainer.remove_callback(PrinterCallback)  # no per-run log dict on stdout
        meter = DirectCost()
        gc.collect()
        with clock() as c:
            if tracked:
                tracker = meter.timed(GrokTracker)(scratch / "run", config=config, seed=0, save_every=save_every)
                meter.watch_saver(tracker)
                callback = GrokTrackerCallback(
                    tracker, eval_every=eval_every,
                    evaluate=lambda m: grok_curve(trainer.state.global_step, t_mem=steps // 5, t_gen=steps // 2))
                for event in ("on_train_begin", "on_pre_optimizer_step", "on_step_end", "on_evaluate", "on_train_end"):
                    setattr(callback, event, meter.timed(getattr(callback, event)))
                trainer.add_callback(callback)
            trainer.train()  # the callback closes the tracker (waits for writes, detects, pins) at train end
        if tracked:
            c.direct = meter.seconds
        shutil.rmtree(scratch, ignore_errors=True)
        return c

    loop(False)  # warm-up
    # 10: one pair of this A/B varies by -10 % to +14 % on this shared VM (two runs at 38ce16b), against a 2 % target
    repeats = ctx.reps(10, 1)
    out = _summarise(side_by_side({"bare": lambda: loop(False), "tracked": lambda: loop(True)}, repeats), "bare", steps)
    n_params = sum(p.numel() for p in model_from_config(config, data.tokenizer, 0).parameters())
    out.update(status="ok", eval_every=eval_every, save_every=save_every, repeats=repeats, note=(
        f"tofu-tiny: {steps} Trainer steps (batch {config['batch_size']}, {n_params / 1e6:.2f}M params), eval every "
        f"{eval_every} (synthetic metrics), weights saved every {save_every}; timed: the tracker's creation and "
        "trainer.train() (the callback closes the tracker at train end)."))
    return out


def run(ctx: Context) -> dict[str, Any]:
    # the modular preset's own run: its length and its default eval/save schedule (fixed costs such as
    # creating the run and close() are spread over the run a user actually trains)
    from grokplug.plugins import get_plugin_manager

    config = get_plugin_manager().presets.get("modular").resolve_config()
    steps = ctx.pick(int(config["max_steps"]), 200)
    mod = _modular(ctx, steps, save_every=int(config.get("save_every") or 20), eval_every=int(config["eval_every"]))
    rows = _rows("modular", mod, {"bare": " (bare loop)", "async": " + GrokTracker (async saves, default)",
                                  "sync": " + GrokTracker (saves inline)"})
    notes = [
        f"modular: {steps} full-batch steps, eval every {mod['eval_every']} (synthetic metrics), checkpoint (weights + "
        f"optimizer) every {mod['save_every']}, {mod['repeats']} interleaved repeats; the time includes creating the "
        "run and close(). Overhead = paired ratio tracked ÷ bare − 1, repeat by repeat.",
        "Saves between durable points are not fsynced (docs/reliability.md, 'Durable points'); this run is shorter than "
        "the default durable_every_s (30 s), so its durable points are the run's creation and close(). A longer run "
        "adds one durable point (a few fsyncs) per 30 s.",
    ]
    tofu = _tofu_tiny(ctx)
    targets = []
    if tofu.get("status") == "ok":
        rows += _rows("tofu-tiny Trainer", tofu, {"bare": " (bare)", "tracked": " + GrokTrackerCallback"})
        tracked = tofu["variants"]["tracked"]
        targets.append(target("tracker overhead on tofu-tiny (wall)", round(tracked["overhead_wall"]["median"] * 100, 2),
                              TOFU_TARGET_PCT, "<=", " %",
                              note=f"paired A/B, spread {fmt_spread(tracked['overhead_wall'], 100, 1, ' %')}; CPU-time "
                                   f"overhead {tracked['overhead_cpu']['median'] * 100:.2f} %"))
        targets.append(target("tracker direct cost on tofu-tiny (time inside grokplug ÷ bare run)",
                              round(tracked["overhead_direct"]["median"] * 100, 2), TOFU_TARGET_PCT, "<=", " %",
                              note="attribution, immune to other jobs' load; an upper bound of grokplug's own work"))
        notes.append(tofu["note"])
    else:
        rows.append(["tofu-tiny Trainer", "not run", tofu.get("why", ""), "", "", ""])
        targets.append(target("tracker overhead on tofu-tiny (wall)", None, TOFU_TARGET_PCT, "<=", " %",
                              note=f"not run: {tofu.get('why', '')}"))
    a, s = mod["variants"]["async"], mod["variants"]["sync"]
    # the worst case (issue 16): modular's 6 ms steps with its default save schedule, async saves (the default)
    targets.insert(0, target("tracker overhead on modular, the worst case (wall)",
                             round(a["overhead_wall"]["median"] * 100, 2), MODULAR_TARGET_PCT, "<=", " %",
                             note=f"paired A/B, spread {fmt_spread(a['overhead_wall'], 100, 1, ' %')}; direct cost "
                                  f"{a['overhead_direct']['median'] * 100:.2f} % (the loop's time inside grokplug plus "
                                  "the save thread's CPU time, which mostly runs beside the loop)"))
    return {
        "status": "ok",
        "summary": (f"modular (worst case): GrokTracker adds {fmt_spread(a['overhead_wall'], 100, 1, ' %')} wall / "
                    f"{fmt_spread(a['overhead_cpu'], 100, 1, ' %')} CPU with async saves (direct cost "
                    f"{fmt_spread(a['overhead_direct'], 100, 2, ' %')}), "
                    f"{fmt_spread(s['overhead_wall'], 100, 1, ' %')} wall with inline saves"),
        "tables": [table("per training step: wall and CPU ms, median [spread]; overhead vs the bare loop (paired A/B "
                         "ratios), and the direct cost (time inside grokplug ÷ the bare run's wall time)",
                         ["loop", "wall ms/step", "CPU ms/step", "overhead (wall)", "overhead (CPU)", "direct cost"],
                         rows)],
        "targets": targets,
        "notes": notes,
        "data": {"modular": mod, "tofu_tiny": tofu},
    }
