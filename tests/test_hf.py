"""HF integration: the Trainer callback, PreTrainedModel and peft models as starting points."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

import grokplug
from grokplug import hookimpl
from grokplug._rundir import RunDir

from support_runs import scripted_grokking


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=8, n_embd=16, n_layer=1, n_head=2))


@pytest.fixture(scope="module")
def gpt2_run(tmp_path_factory):
    """A tracked run whose checkpoints are real GPT-2 weights (metrics scripted to grok)."""
    path = tmp_path_factory.mktemp("hf") / "run"
    model = tiny_gpt2()
    with grokplug.GrokTracker(path, config={"arch": "gpt2-tiny"}) as tracker:
        for step in range(0, 3001, 50):
            with torch.no_grad():
                model.transformer.wte.weight.add_(0.001)
            tracker.log_eval(step, model=model, **scripted_grokking(step))
    return path


def test_pretrained_model_round_trip_with_tied_weights(gpt2_run):
    model = tiny_gpt2(seed=1)
    ref = grokplug.load_checkpoint(model, gpt2_run, "grok")
    saved = tiny_gpt2(seed=2)
    grokplug.load_checkpoint(saved, gpt2_run, "grok")
    assert torch.equal(model.transformer.wte.weight, saved.transformer.wte.weight)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()  # still tied
    assert ref.label == "grokking"


def test_peft_model_gets_base_weights_and_keeps_adapters(gpt2_run):
    from peft import LoraConfig, get_peft_model

    reference = tiny_gpt2(seed=1)
    grokplug.load_checkpoint(reference, gpt2_run, "pre")
    peft_model = get_peft_model(tiny_gpt2(seed=3), LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True))
    lora_before = {k: v.clone() for k, v in peft_model.state_dict().items() if "lora_" in k}

    @grokplug.grok_aware(gpt2_run, phase="pre")
    def unlearn(model):
        return model

    unlearn(peft_model)
    base = peft_model.get_base_model()
    attn = base.transformer.h[0].attn.c_attn
    assert torch.equal(attn.base_layer.weight, reference.transformer.h[0].attn.c_attn.weight)
    assert torch.equal(base.transformer.wte.weight, reference.transformer.wte.weight)
    assert all(torch.equal(peft_model.state_dict()[k], v) for k, v in lora_before.items())


def test_trainer_callback_tracks_a_real_trainer_run(tmp_path, pm):
    steps_seen = []

    class Spy:
        @hookimpl
        def grokplug_transform_gradients(self, model, step):
            steps_seen.append(step)

    pm.register(Spy(), name="spy")
    tokens = torch.randint(0, 32, (16, 8), generator=torch.Generator().manual_seed(0))
    train = Dataset.from_dict({"input_ids": tokens.tolist(), "labels": tokens.tolist()})
    model = tiny_gpt2()

    @torch.no_grad()
    def evaluate(m):
        m.eval()
        ids = tokens[:8]
        logits = m(input_ids=ids).logits[:, :-1]
        acc = float((logits.argmax(-1) == ids[:, 1:]).float().mean())
        m.train()
        return {"train_acc": acc, "val_acc": acc / 2}

    tracker = grokplug.GrokTracker(tmp_path / "run", config={"arch": "gpt2-tiny"})
    args = TrainingArguments(
        output_dir=str(tmp_path / "hf"), max_steps=12, per_device_train_batch_size=4, learning_rate=1e-2,
        report_to=[], save_strategy="no", use_cpu=True, logging_steps=50, disable_tqdm=True,
    )
    callback = grokplug.GrokTrackerCallback(tracker, evaluate=evaluate, eval_every=4)
    Trainer(model=model, args=args, train_dataset=train, callbacks=[callback]).train()
    run = RunDir(tmp_path / "run")
    assert [r["step"] for r in run.history()] == [0, 4, 8, 12]
    assert run.status == "finished" and run.report() is not None
    assert steps_seen == list(range(12))
    assert set(run.checkpoint_steps()) <= {0, 4, 8, 12} and 12 in run.checkpoint_steps()


def test_trainer_callback_uses_trainer_evaluations(tmp_path):
    """Without evaluate=, metrics come from Trainer evaluations on {"train", "val"} eval datasets."""
    from transformers import TrainerControl, TrainerState

    tracker = grokplug.GrokTracker(tmp_path / "run")
    callback = grokplug.GrokTrackerCallback(tracker)
    state, control = TrainerState(), TrainerControl()
    state.global_step = 10
    model = torch.nn.Linear(2, 2)
    callback.on_evaluate(None, state, control, metrics={"eval_train_accuracy": 1.0, "eval_train_loss": 0.1}, model=model)
    assert RunDir(tmp_path / "run").history() == []
    callback.on_evaluate(None, state, control, metrics={"eval_val_accuracy": 0.25}, model=model)
    (record,) = RunDir(tmp_path / "run").history()
    assert record == {"step": 10, "train_acc": 1.0, "val_acc": 0.25, "train_loss": 0.1, "saved": True}
    tracker.close()
