"""TrainerAdapter: third-party HF Trainer subclasses (OU's old shape and the new one) run unchanged,
monitored by the TrainerCallback step monitor, from a start loaded through grokplug."""

from __future__ import annotations

import inspect

import pytest
import torch
from support_llm import (
    answer_prob,
    collator,
    forget_retain_dataset,
    real_tokenizer,
    tiny_llama,
)
from transformers import Trainer

from grokplug import GrokTracker, UnlearningMethod, hookimpl
from grokplug.adapters import TrainerAdapter, wrap_trainer_class
from grokplug.errors import UsageError
from grokplug.llm.methods import LLMUnlearnData, make_training_args
from grokplug.llm.monitor import TrainerStepMonitor
from grokplug.llm.trainers import NPO, GradAscent

# --- written exactly the way open-unlearning d3d7cf9 writes its trainers --------------------------


class FinetuneTrainer(Trainer):
    def __init__(self, evaluators=None, template_args=None, *args, **kwargs):
        self.evaluators = evaluators
        self.template_args = template_args
        super().__init__(*args, **kwargs)


class UnlearnTrainer(FinetuneTrainer):
    pass


class GradDiff(UnlearnTrainer):
    """OU-style GradDiff (old compute_loss signature)."""

    SEEN: list = []

    def __init__(self, gamma=1.0, alpha=1.0, retain_loss_type="NLL", *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gamma = gamma
        self.alpha = alpha
        self.retain_loss_type = retain_loss_type

    def compute_loss(self, model, inputs, return_outputs=False):
        forget_inputs = inputs["forget"]
        forget_inputs = {
            "input_ids": forget_inputs["input_ids"],
            "attention_mask": forget_inputs["attention_mask"],
            "labels": forget_inputs["labels"],
        }
        forget_outputs = model(**forget_inputs)
        forget_loss = -forget_outputs.loss
        retain_inputs = inputs["retain"]
        retain_inputs = {
            "input_ids": retain_inputs["input_ids"],
            "attention_mask": retain_inputs["attention_mask"],
            "labels": retain_inputs["labels"],
        }
        retain_loss = model(**retain_inputs).loss
        loss = self.gamma * forget_loss + self.alpha * retain_loss
        GradDiff.SEEN.append((self.gamma, self.alpha, self.tokenizer, self.evaluators))
        return (loss, forget_outputs) if return_outputs else loss


class NewStyleGA(Trainer):
    CALLS: list = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        NewStyleGA.CALLS.append(num_items_in_batch)
        outputs = model(**{k: inputs["forget"][k] for k in ("input_ids", "attention_mask", "labels")})
        return (-outputs.loss, outputs) if return_outputs else -outputs.loss


class Recorder:
    def __init__(self, stop_at: int | None = None) -> None:
        self.events: list = []
        self.stop_at = stop_at

    @hookimpl
    def grokplug_before_unlearn(self, context):
        weight = context.model.model.embed_tokens.weight.detach().clone()
        self.events.append(("before", context.method, weight))

    @hookimpl
    def grokplug_on_unlearn_step(self, context, step, metrics):
        self.events.append(("step", step, dict(metrics)))
        return self.stop_at is not None and step >= self.stop_at

    @hookimpl
    def grokplug_after_unlearn(self, context, result):
        self.events.append(("after", result.total_steps, result))


@pytest.fixture
def recorder(pm):
    rec = Recorder()
    pm.register(rec, name="recorder")
    return rec


@pytest.fixture
def pairs():
    return forget_retain_dataset()


def data_for(pairs, tokenizer=None):
    return LLMUnlearnData(train_dataset=pairs, collator=collator(), tokenizer=tokenizer)


RUN = {"training_args": {"use_cpu": True}, "per_device_train_batch_size": 4, "learning_rate": 1e-2}


def test_ou_style_trainer_runs_unchanged_with_monitor_and_hooks(recorder, pairs, tmp_path):
    GradDiff.SEEN.clear()
    tok = real_tokenizer()
    adapter = TrainerAdapter(GradDiff, gamma=1.0, alpha=0.5, evaluators=None, template_args=None)
    assert isinstance(adapter, UnlearningMethod) and adapter.domain == "llm" and adapter.name == "GradDiff"
    result = adapter.unlearn(
        data_for(pairs, tok), tiny_llama(), forget_score=lambda m: answer_prob(m, pairs),
        retain_score=lambda m: answer_prob(m, pairs, key="retain"), max_steps=3, output_dir=tmp_path, **RUN,
    )  # fmt: skip
    assert result.total_steps == 3 and not result.stopped_early
    assert [point[0] for point in result.trail] == [0, 1, 2, 3]
    assert result.trail[-1][1] < result.trail[0][1]  # the forget answers became less likely
    assert len(GradDiff.SEEN) == 3 and GradDiff.SEEN[0][:2] == (1.0, 0.5)
    assert (
        GradDiff.SEEN[0][2] is tok and GradDiff.SEEN[0][3] is None
    )  # self.tokenizer works on transformers 5
    kinds = [e[0] for e in recorder.events]
    assert kinds == ["before", "step", "step", "step", "step", "after"]
    assert [e[1] for e in recorder.events if e[0] == "step"] == [0, 1, 2, 3]
    assert {"forget_acc", "retain_acc"} <= set(recorder.events[1][2])
    assert recorder.events[-1][2] is result and result.method == "GradDiff"


def test_old_signature_and_tokenizer_keyword_need_the_wrapper(pairs, tmp_path):
    tok = real_tokenizer()
    common = {"args": make_training_args(tmp_path, use_cpu=True, max_steps=2, per_device_train_batch_size=4),
              "train_dataset": pairs, "data_collator": collator()}  # fmt: skip
    trainer_takes = inspect.signature(Trainer.__init__).parameters
    if "tokenizer" not in trainer_takes:
        with pytest.raises(TypeError, match="tokenizer"):
            GradDiff(model=tiny_llama(), tokenizer=tok, **common)  # OU's load_trainer call, on new transformers
    tokenizer_kw = "processing_class" if "processing_class" in trainer_takes else "tokenizer"
    raw = GradDiff(model=tiny_llama(), **{tokenizer_kw: tok}, **common)
    if "num_items_in_batch" in inspect.signature(Trainer.compute_loss).parameters:  # transformers >= 4.46
        with pytest.raises(TypeError, match="num_items_in_batch"):
            raw.train()
    else:  # OU's pins (4.45.1): the class runs as it is, which is why OU pins it
        raw.train()
        assert raw.state.global_step == 2
    wrapped_cls = wrap_trainer_class(GradDiff)
    assert issubclass(wrapped_cls, GradDiff) and wrapped_cls.__name__ == "GradDiff"
    assert wrap_trainer_class(GradDiff) is wrapped_cls and wrap_trainer_class(wrapped_cls) is wrapped_cls
    trainer = wrapped_cls(model=tiny_llama(), tokenizer=tok, gamma=0.5, **common)
    assert getattr(trainer, tokenizer_kw) is tok and trainer.tokenizer is tok and trainer.gamma == 0.5
    trainer.train()
    assert trainer.state.global_step == 2


def test_new_signature_class_keeps_its_compute_loss(recorder, pairs, tmp_path):
    NewStyleGA.CALLS.clear()
    assert wrap_trainer_class(NewStyleGA).compute_loss is NewStyleGA.compute_loss
    result = TrainerAdapter(NewStyleGA).unlearn(
        data_for(pairs),
        tiny_llama(),
        forget_score=lambda m: answer_prob(m, pairs),
        max_steps=2,
        output_dir=tmp_path,
        **RUN,
    )
    assert result.total_steps == 2 and len(NewStyleGA.CALLS) == 2
    # grokplug's own Trainer classes run through the adapter as well
    npo = TrainerAdapter(NPO, beta=0.1, alpha=1.0)
    assert (
        npo.unlearn(
            data_for(pairs), tiny_llama(), max_steps=2, output_dir=tmp_path / "npo", **RUN
        ).total_steps
        == 2
    )


def test_monitor_stops_at_the_target(pairs, tmp_path):
    monitor = TrainerStepMonitor(lambda m: answer_prob(m, pairs), target="frac:0.8", eval_every=1)
    model = tiny_llama()
    trainer = GradAscent(model=model, args=make_training_args(tmp_path, use_cpu=True, max_steps=30, learning_rate=1e-2,
                         per_device_train_batch_size=4), train_dataset=pairs, data_collator=collator(),
                         callbacks=[monitor])  # fmt: skip
    trainer.train()
    assert monitor.steps_to_target is not None and 0 < monitor.steps_to_target < 30
    assert trainer.state.global_step == monitor.steps_to_target and monitor.stopped_early
    assert monitor.target == pytest.approx(0.8 * monitor.trail[0][1])
    assert monitor.trail[-1][1] <= monitor.target < monitor.trail[-2][1]


def test_a_plugin_can_stop_training_and_eval_every_is_respected(pm, pairs, tmp_path):
    rec = Recorder(stop_at=4)
    pm.register(rec, name="stopper")
    result = TrainerAdapter(GradDiff).unlearn(
        data_for(pairs), tiny_llama(), forget_score=lambda m: answer_prob(m, pairs), eval_every=2, max_steps=10,
        output_dir=tmp_path, **RUN,
    )  # fmt: skip
    assert [p[0] for p in result.trail] == [0, 2, 4]
    assert result.total_steps == 4 and result.stopped_early and result.steps_to_target is None


def test_final_state_is_evaluated_between_evaluations(pairs, tmp_path):
    result = TrainerAdapter(GradDiff).unlearn(
        data_for(pairs), tiny_llama(), forget_score=lambda m: answer_prob(m, pairs), eval_every=2, max_steps=3,
        output_dir=tmp_path, **RUN,
    )  # fmt: skip
    assert [p[0] for p in result.trail] == [0, 2, 3]


def test_start_is_loaded_from_a_run_dir(recorder, pairs, tmp_path):
    trained = tiny_llama(seed=7)
    with GrokTracker(tmp_path / "run", async_save=False) as tracker:
        tracker.log_eval(0, train_acc=0.1, val_acc=0.1, model=tiny_llama(seed=3))
        tracker.log_eval(10, train_acc=0.9, val_acc=0.2, model=trained)
    result = TrainerAdapter(GradDiff).unlearn(
        data_for(pairs), tiny_llama(seed=0), source=tmp_path / "run", start="final", max_steps=1,
        output_dir=tmp_path / "out", **RUN,
    )  # fmt: skip
    assert result.start.phase == "final" and result.start.step == 10
    assert torch.equal(
        recorder.events[0][2], trained.model.embed_tokens.weight
    )  # θ loaded before the method ran


def test_bad_arguments_fail_at_wrap_time(pm):
    with pytest.raises(UsageError, match="gama"):
        TrainerAdapter(GradDiff, gama=1.0)
    with pytest.raises(UsageError, match="not a transformers.Trainer"):
        TrainerAdapter(int)
    with pytest.raises(UsageError, match="lr"):
        TrainerAdapter(GradDiff).hyperparameters(lr=1.0)
    with pytest.raises(UsageError, match="needs a forget_score"):
        TrainerStepMonitor(None, target=0.5)
    with pytest.raises(UsageError, match="'test'"):
        TrainerStepMonitor(lambda m: 0.0, target="test")


def test_run_trains_without_lifecycle_hooks(recorder, pairs, tmp_path):
    model = tiny_llama()
    start = model.lm_head.weight.detach().clone()
    adapter = TrainerAdapter(GradDiff, alpha=0.0)
    out = adapter.run(model, data_for(pairs), max_steps=2, **RUN)
    assert out is model and not torch.equal(model.lm_head.weight, start)
    assert recorder.events == []


DDP_SCRIPT = r"""
import json, os, sys
sys.path.insert(0, sys.argv[2])
from support_llm import answer_prob, collator, forget_retain_dataset, tiny_llama
from grokplug import UnlearnContext, get_plugin_manager, hookimpl
from grokplug.llm.methods import make_training_args
from grokplug.llm.monitor import TrainerStepMonitor
from grokplug.llm.trainers import NPO

rank = int(os.environ["RANK"])
class StopOnRankOne:
    @hookimpl
    def grokplug_on_unlearn_step(self, context, step, metrics):
        return rank == 1 and step >= 3
get_plugin_manager().register(StopOnRankOne(), name="stop-on-rank-1")
pairs = forget_retain_dataset(n=16)
calls = []
def score(m):
    calls.append(1)
    return answer_prob(m, pairs)
model = tiny_llama()
monitor = TrainerStepMonitor(score, target=1e-9, context=UnlearnContext(method="npo", model=model))
args = make_training_args(sys.argv[1], use_cpu=True, max_steps=40, learning_rate=1e-2, per_device_train_batch_size=2)
trainer = NPO(model=model, args=args, train_dataset=pairs, data_collator=collator(), callbacks=[monitor])
trainer.train()
print(json.dumps({"rank": trainer.args.process_index, "world": trainer.args.world_size, "step": trainer.state.global_step,
                  "trail": monitor.trail, "calls": len(calls)}), flush=True)
import grokplug
grokplug.end_process_group()  # gloo left to interpreter exit sometimes aborted a rank (SIGABRT; see grokplug._signals)
"""


@pytest.mark.slow
def test_two_ranks_share_rank_zero_scores_and_stop_together(tmp_path):
    import json
    from pathlib import Path

    from support_launch import torchrun_two_ranks

    script = tmp_path / "ddp_monitor.py"
    script.write_text(DDP_SCRIPT)
    out = torchrun_two_ranks(script, str(tmp_path / "out"), str(Path(__file__).parent), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = sorted(
        (json.loads(s) for s in out.stdout.splitlines() if s.startswith('{"rank"')), key=lambda d: d["rank"]
    )
    assert [d["rank"] for d in lines] == [0, 1] and lines[0]["world"] == 2
    assert lines[0]["calls"] > 0 and lines[1]["calls"] == 0  # only rank 0 evaluates
    assert lines[0]["trail"] == lines[1]["trail"]  # ... and every rank records its numbers
    assert lines[0]["step"] == lines[1]["step"] == 3  # rank 1's plugin asked at step 3: both ranks stopped
