"""LLM unlearning methods (OU's definitions as HF Trainer subclasses): loss values, gradients, reference model."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from support_llm import (
    ListDataset,
    answer_nll,
    batch,
    collator,
    forget_retain_dataset,
    qa_item,
    tiny_llama,
)

from grokplug.errors import UsageError
from grokplug.llm.losses import activation_mse, compute_batch_nll, compute_kl_divergence, forward_with_cache
from grokplug.llm.methods import LLMUnlearnData, make_training_args
from grokplug.llm.trainers import DPO, NPO, RMU, GradAscent, GradDiff, SimNPO, UnlearnTrainer

LOG2 = math.log(2.0)


def make_trainer(cls, model, tmp_path, dataset=None, *, max_steps=2, lr=1e-2, **kwargs):
    args = make_training_args(
        tmp_path, use_cpu=True, max_steps=max_steps, learning_rate=lr, per_device_train_batch_size=4,
        lr_scheduler_type="constant", seed=0,
    )  # fmt: skip
    data = dataset if dataset is not None else forget_retain_dataset()
    return cls(model=model, args=args, train_dataset=data, data_collator=collator(), **kwargs)


@pytest.fixture
def model():
    return tiny_llama()


@pytest.fixture
def inputs():
    gen = torch.Generator().manual_seed(1)
    return {"forget": batch(gen), "retain": batch(gen)}


def grads_of(model, loss):
    model.zero_grad()
    loss.backward()
    return [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]


def assert_grads_close(a, b, tol=1e-4):
    assert len(a) == len(b) and len(a) > 0
    for x, y in zip(a, b, strict=True):
        assert torch.allclose(x, y, atol=tol, rtol=1e-3), (x - y).abs().max()


def test_grad_ascent_is_negative_nll_and_a_step_raises_forget_nll(model, inputs, tmp_path):
    trainer = make_trainer(GradAscent, model, tmp_path)
    loss = trainer.compute_loss(model, inputs)
    assert torch.allclose(loss, -model(**inputs["forget"]).loss)
    assert trainer.ref_model is None  # GA needs no reference: no doubled memory
    assert trainer.compute_loss(model, {"forget": inputs["forget"]}).item() == pytest.approx(
        loss.item()
    )  # retain ignored
    data = trainer.train_dataset
    before = answer_nll(model, data)
    trainer.train()
    assert trainer.state.global_step == 2
    assert answer_nll(model, data) > before + 0.05


def test_grad_diff_weights_forget_and_retain(model, inputs, tmp_path):
    trainer = make_trainer(GradDiff, model, tmp_path, gamma=0.7, alpha=0.3)
    expected = 0.7 * -model(**inputs["forget"]).loss + 0.3 * model(**inputs["retain"]).loss
    assert trainer.compute_loss(model, inputs).item() == pytest.approx(expected.item(), rel=1e-5)
    assert set(trainer.last_losses) == {"forget", "retain"}


def test_kl_retain_term_is_zero_at_start_and_grows(model, inputs, tmp_path):
    trainer = make_trainer(GradDiff, model, tmp_path, retain_loss_type="KL")
    assert trainer.ref_model is not None
    forget_only = -model(**inputs["forget"]).loss
    assert trainer.compute_loss(model, inputs).item() == pytest.approx(forget_only.item(), abs=1e-5)
    assert trainer.last_losses["retain"].abs().item() < 1e-6
    trainer.train()
    kl, _ = compute_kl_divergence(model, trainer.ref_model, inputs["retain"])
    assert kl.item() > 1e-4


def test_npo_at_start_is_two_over_beta_log_two_and_its_gradient_is_ascent(model, inputs, tmp_path):
    trainer = make_trainer(NPO, model, tmp_path, alpha=0.0)
    assert trainer.beta == 0.1  # OU's NPO.yaml
    loss = trainer.compute_loss(model, inputs)
    assert loss.item() == pytest.approx(2 / 0.1 * LOG2, rel=1e-5)  # 13.8629
    # d/dθ of -2/β·logσ(β(NLL−NLL_ref)) at NLL = NLL_ref is -∇ mean(NLL_sum): ascent on summed sequence NLL
    g_npo = grads_of(model, loss)
    g_ascent = grads_of(model, -compute_batch_nll(model, inputs["forget"])[0].mean())
    assert_grads_close(g_npo, g_ascent)


def test_simnpo_matches_hand_computed_value(model, inputs, tmp_path):
    trainer = make_trainer(SimNPO, model, tmp_path, alpha=0.0, delta=0.5)
    assert (trainer.gamma, trainer.beta) == (0.125, 4.5)  # OU's SimNPO.yaml
    forget = inputs["forget"]
    logp = F.log_softmax(model(**forget).logits, dim=-1)
    nll = torch.zeros(forget["labels"].shape[0])
    for b, labels in enumerate(forget["labels"]):
        for t in range(1, labels.shape[0]):
            if labels[t] != -100:
                nll[b] -= logp[b, t - 1, labels[t]]
    lengths = (forget["labels"] != -100).sum(-1).float()
    x = 4.5 * (nll / lengths - 0.5)
    by_hand = (2 / 4.5 * torch.log1p(torch.exp(-x))).mean()  # -2/β·logσ(x)
    assert trainer.compute_loss(model, inputs).item() == pytest.approx(0.125 * by_hand.item(), rel=1e-5)


def test_dpo_at_start_and_its_gradient(model, tmp_path):
    gen = torch.Generator().manual_seed(2)
    original, alternate, retain = batch(gen), batch(gen, length=6), batch(gen)
    trainer = make_trainer(DPO, model, tmp_path, forget_retain_dataset(idk=True), alpha=0.0)
    same = {"forget": {"original": original, "alternate": original}, "retain": retain}
    assert trainer.compute_loss(model, same).item() == pytest.approx(2 / 0.1 * LOG2, rel=1e-5)
    inputs = {"forget": {"original": original, "alternate": alternate}, "retain": retain}
    loss = trainer.compute_loss(model, inputs)
    assert loss.item() == pytest.approx(2 / 0.1 * LOG2, rel=1e-5)  # both log-ratios are 0 at the start
    # at the start ∇ = ∇ mean NLL(win=alternate) − ∇ mean NLL(lose=original): towards IDK, away from the answer
    g_dpo = grads_of(model, loss)
    g_hand = grads_of(
        model, compute_batch_nll(model, alternate)[0].mean() - compute_batch_nll(model, original)[0].mean()
    )
    assert_grads_close(g_dpo, g_hand)
    with pytest.raises(UsageError, match="original"):
        trainer.compute_loss(model, {"forget": original, "retain": retain})


def test_rmu_defaults_and_forget_mse_decreases(model, inputs, tmp_path):
    start = tiny_llama()
    trainer = make_trainer(RMU, model, tmp_path, max_steps=4)
    assert trainer.module_regex == r"model\.layers\.0"  # no layer 7: the middle layer ⌊(2−1)/2⌋ = 0
    assert trainer.model_module is model.model.layers[0]
    assert trainer.retain_loss_type == "EMBED_DIFF" and trainer.steering_coeff == 2.0
    assert trainer.activation_loss == "ou"
    assert trainer.compute_retain_loss(model, inputs["retain"]).item() == pytest.approx(0.0, abs=1e-10)
    trainer.train()
    control = trainer.control_vec
    assert control is not None and control.norm().item() == pytest.approx(2.0, rel=1e-5)

    def forget_mse(m):
        forget = inputs["forget"]
        acts, _ = forward_with_cache(m, forget, m.model.layers[0])
        return activation_mse(acts, control.expand_as(acts), forget["labels"] != -100).item()

    assert forget_mse(model) < forget_mse(start) - 1e-3


def test_rmu_steers_ou_layer_7_where_the_model_has_it(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from grokplug.llm.trainers import last_layer_regex, rmu_layer_regex

    deep = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=8, intermediate_size=16, num_hidden_layers=10,
                                        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16))
    assert rmu_layer_regex(deep) == r"model\.layers\.7"  # OU's module_regex, not the middle (4) or last (9)
    assert last_layer_regex(deep) == r"model\.layers\.9"
    shallow = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=8, intermediate_size=16, num_hidden_layers=5,
                                           num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16))
    assert rmu_layer_regex(shallow) == r"model\.layers\.2"  # ⌊(5−1)/2⌋


def _hand_activation_sums(act, target, mask):
    """s_i = Σ_t∈mask mean_d (a − c)², n_i = #masked tokens, by plain loops."""
    sums, counts = [], []
    for i in range(act.shape[0]):
        total, n = 0.0, 0
        for t in range(act.shape[1]):
            if mask[i, t]:
                total += float(((act[i, t] - target[i, t]) ** 2).mean())
                n += 1
        sums.append(total)
        counts.append(n)
    return sums, counts


def test_rmu_activation_loss_is_ous_broadcast_by_default_for_unequal_lengths():
    gen = torch.Generator().manual_seed(4)
    act, target = torch.randn(3, 5, 4, generator=gen), torch.randn(3, 5, 4, generator=gen)
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 0, 0, 0]], dtype=torch.bool)  # 5, 2, 1 tokens
    sums, counts = _hand_activation_sums(act, target, mask)
    b = len(sums)
    # OU: [B] / [B, 1] broadcasts to [B, B]: element (j, i) = s_i / n_j, then the mean of all B² entries
    ou = sum(sums[i] / counts[j] for i in range(b) for j in range(b)) / b**2
    per_sequence = sum(s / n for s, n in zip(sums, counts, strict=True)) / b
    assert abs(ou - per_sequence) > 0.1  # unequal lengths: the two reductions really differ here
    assert activation_mse(act, target, mask).item() == pytest.approx(ou, rel=1e-5)
    assert activation_mse(act, target, mask, "ou").item() == pytest.approx(ou, rel=1e-5)
    assert activation_mse(act, target, mask, "per_sequence").item() == pytest.approx(per_sequence, rel=1e-5)
    equal = torch.ones(3, 5, dtype=torch.bool)  # equal lengths: both reductions agree
    assert activation_mse(act, target, equal).item() == pytest.approx(activation_mse(act, target, equal, "per_sequence").item(), rel=1e-6)


def test_rmu_forget_loss_uses_the_chosen_reduction(model, tmp_path):
    gen = torch.Generator().manual_seed(2)
    items = [qa_item(gen, length=8, prompt=p) for p in (1, 5, 6)]  # answer lengths 7, 3, 2: unequal
    forget = collator()(items)
    for reduction in ("ou", "per_sequence"):
        trainer = make_trainer(RMU, model, tmp_path / reduction, activation_loss=reduction)
        loss, _ = trainer.compute_forget_loss(model, forget)
        acts, _ = forward_with_cache(model, forget, model.model.layers[0])
        control = trainer.control_vec.expand_as(acts)
        sums, counts = _hand_activation_sums(acts.detach(), control, forget["labels"] != -100)
        if reduction == "ou":
            expected = sum(si / nj for si in sums for nj in counts) / len(sums) ** 2
        else:
            expected = sum(si / ni for si, ni in zip(sums, counts, strict=True)) / len(sums)
        assert loss.item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(UsageError, match="activation_loss"):
        make_trainer(RMU, model, tmp_path / "bad", activation_loss="mean")


def test_rmu_trains_only_the_selected_parameters(model, tmp_path):
    start = {k: v.clone() for k, v in model.state_dict().items()}
    pattern = r"model\.layers\.0\.mlp\.down_proj\.weight"  # in the steered layer (0), so it gets gradients
    trainer = make_trainer(RMU, model, tmp_path, trainable_params_regex=[pattern])
    trainer.train()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, start[k])}
    assert changed == {"model.layers.0.mlp.down_proj.weight"}
    assert all(p.requires_grad for p in model.parameters())  # each flag restored after building the optimizer
    with pytest.raises(UsageError, match="exactly one module"):
        make_trainer(RMU, tiny_llama(), tmp_path, module_regex=r"model\.layers\.\d")


def test_reference_is_a_frozen_copy_unchanged_by_training(model, tmp_path):
    trainer = make_trainer(NPO, model, tmp_path, lr=1e-2)
    ref = trainer.ref_model
    assert ref is not model and not ref.training
    assert all(not p.requires_grad for p in ref.parameters())
    assert all(
        a.data_ptr() != b.data_ptr() for a, b in zip(ref.parameters(), model.parameters(), strict=True)
    )
    snapshot = {k: v.clone() for k, v in ref.state_dict().items()}
    start = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.train()
    assert all(torch.equal(v, snapshot[k]) for k, v in ref.state_dict().items())
    assert any(not torch.equal(v, start[k]) for k, v in model.state_dict().items())


def test_evaluation_uses_the_plain_lm_loss_not_the_unlearning_loss(model, tmp_path):
    trainer = make_trainer(NPO, model, tmp_path)
    gen = torch.Generator().manual_seed(3)
    items = [qa_item(gen) for _ in range(4)]
    expected = model(**collator()(items)).loss.item()
    metrics = trainer.evaluate(eval_dataset=ListDataset(items))
    assert metrics["eval_loss"] == pytest.approx(expected, rel=1e-4)  # NPO's loss would be 13.86


def test_flat_batches_and_bad_retain_type_are_refused(model, inputs, tmp_path):
    trainer = make_trainer(GradDiff, model, tmp_path)
    with pytest.raises(UsageError, match="'forget'"):
        trainer.compute_loss(model, inputs["forget"])
    with pytest.raises(UsageError, match="retain"):
        trainer.compute_loss(model, {"forget": inputs["forget"]})
    with pytest.raises(UsageError, match="retain_loss_type"):
        make_trainer(GradDiff, model, tmp_path, retain_loss_type="EMBED_DIFF")
    assert not trainer.args.remove_unused_columns
    with pytest.raises(UsageError, match="remove_unused_columns"):
        make_training_args(tmp_path, remove_unused_columns=True)


def test_an_explicit_reference_is_used_as_given(model, inputs, tmp_path):
    other = tiny_llama(seed=5)  # e.g. θ_pre as the reference for a θ_grok start
    trainer = make_trainer(NPO, model, tmp_path, ref_model=other, alpha=0.0)
    assert trainer.ref_model is other and not other.training
    forget = inputs["forget"]

    def summed_nll(m):  # per sequence, by explicit loops over the labelled positions
        with torch.no_grad():
            logp = F.log_softmax(m(input_ids=forget["input_ids"], attention_mask=forget["attention_mask"]).logits, -1)
        return torch.tensor([
            -sum(float(logp[i, t - 1, forget["labels"][i, t]]) for t in range(1, forget["labels"].shape[1])
                 if forget["labels"][i, t] != -100)
            for i in range(forget["labels"].shape[0])
        ])

    gap = summed_nll(model) - summed_nll(other)  # NPO: −2/β · mean logσ(β (NLL_θ − NLL_ref)), ref = `other`
    expected = float(-2 / 0.1 * F.logsigmoid(0.1 * gap).mean())
    assert expected != pytest.approx(2 / 0.1 * LOG2, rel=1e-3)  # the reference really shifts the loss here
    assert trainer.compute_loss(model, inputs).item() == pytest.approx(expected, rel=1e-4)


# -- registry ------------------------------------------------------------------------------------


def test_the_six_llm_methods_are_registered(pm):
    expected = {"llm-ga": "GradAscent", "llm-graddiff": "GradDiff", "npo": "NPO", "simnpo": "SimNPO",
                "idkdpo": "DPO", "rmu": "RMU"}  # fmt: skip
    for name, trainer_name in expected.items():
        entry = pm.methods.entry(name)
        assert entry.plugin == "grokplug.hooks.llm" and entry.obj.domain == "llm"
        assert entry.obj.trainer_cls.__name__ == trainer_name and issubclass(
            entry.obj.trainer_cls, UnlearnTrainer
        )
    for alias, name in {"GradAscent": "llm-ga", "GradDiff-LLM": "llm-graddiff", "NPO": "npo", "SimNPO": "simnpo",
                        "IdkDPO": "idkdpo", "DPO": "idkdpo", "RMU": "rmu"}.items():  # fmt: skip
        assert pm.methods.entry(alias).name == name
    assert pm.methods.get("ga").domain == "vision" and pm.methods.get("GradDiff").domain == "vision"
    assert pm.methods.get("npo").defaults["beta"] == 0.1
    assert (
        pm.methods.get("simnpo").defaults["gamma"] == 0.125
        and pm.methods.get("simnpo").defaults["beta"] == 4.5
    )
    assert pm.methods.get("rmu").defaults["steering_coeff"] == 2.0
    assert pm.methods.get("idkdpo").forget_item == "idk"
    assert {d["domain"] for d in pm.describe()["methods"] if d["name"] in expected} == {"llm"}


def test_hyperparameters_take_training_arguments_and_the_ou_profile(pm):
    npo = pm.methods.get("npo")
    params = npo.hyperparameters(beta=0.2, use_cpu=True)
    assert params["beta"] == 0.2 and params["use_cpu"] is True and params["learning_rate"] == 1e-4
    assert npo.hyperparameters("ou")["learning_rate"] == 1e-5
    with pytest.raises(UsageError, match="betta"):
        npo.hyperparameters(betta=0.2)


def test_registering_does_not_import_transformers():
    code = ("import sys, grokplug; pm = grokplug.get_plugin_manager(); assert 'npo' in pm.methods; "
            "from grokplug.llm.methods import LLM_METHODS; assert 'transformers' not in sys.modules, 'imported'")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"GROKPLUG_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1", "PATH": ""})  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]


def test_method_run_trains_through_the_registry(pm, tmp_path):
    model = tiny_llama()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    data = LLMUnlearnData(train_dataset=forget_retain_dataset(idk=True), collator=collator())
    out = pm.methods.get("idkdpo").run(model, data, output_dir=tmp_path, training_args={"use_cpu": True},
                                       max_steps=2, per_device_train_batch_size=4, learning_rate=1e-3)  # fmt: skip
    assert out is model
    assert any(not torch.equal(v, start[k]) for k, v in model.state_dict().items())


def test_default_dataset_pairs_forget_with_retain(pm, tmp_path):
    pairs = forget_retain_dataset()
    forget = ListDataset([pairs[i]["forget"] for i in range(len(pairs))])
    retain = ListDataset([pairs[i]["retain"] for i in range(3)])
    data = LLMUnlearnData(forget=forget, retain=retain, collator=collator(), seed=0)
    trainer = pm.methods.get("npo").build_trainer(tiny_llama(), data, output_dir=tmp_path,
                                                  training_args={"use_cpu": True}, max_steps=2)  # fmt: skip
    assert len(trainer.train_dataset) == len(forget) and set(trainer.train_dataset[0]) == {"forget", "retain"}
    trainer.train()
    assert trainer.state.global_step == 2
    with pytest.raises(UsageError, match="tokenizer"):
        LLMUnlearnData(forget=forget).data_collator()
