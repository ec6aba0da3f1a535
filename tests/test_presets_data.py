"""Fast checks of the built-in presets' data, models and configs (no training)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from grokplug.errors import UsageError
from grokplug.presets import BUILTIN_PRESETS, DIGITS, MODULAR, MODULAR_TRANSFORMER, Preset, PresetData
from grokplug.presets.transformer import OneLayerTransformer

IDS = [p.name for p in BUILTIN_PRESETS]
REQUIRED_KEYS = {
    "lr",
    "weight_decay",
    "betas",
    "loss",
    "init_scale",
    "max_steps",
    "eval_every",
    "save_every",
    "batch_size",
}


@pytest.fixture(scope="module", params=BUILTIN_PRESETS, ids=IDS)
def preset(request: pytest.FixtureRequest) -> Preset:
    return request.param


def _same_data(a: PresetData, b: PresetData) -> bool:
    return (
        torch.equal(a.train_x, b.train_x)
        and torch.equal(a.train_y, b.train_y)
        and torch.equal(a.val_x, b.val_x)
        and torch.equal(a.val_y, b.val_y)
        and a.train_indices == b.train_indices
        and a.val_indices == b.val_indices
        and a.forget_eligible == b.forget_eligible
    )


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_builtin_presets_are_named_and_unique() -> None:
    assert [p.name for p in BUILTIN_PRESETS] == ["modular", "digits", "modular-transformer", "digits-noisy", "digits-noisy-cnn"]
    assert (MODULAR.control_label, DIGITS.control_label, MODULAR_TRANSFORMER.control_label) == (
        "memorization",
        "comprehension",
        "memorization",
    )


def test_config_is_complete_and_json_serialisable(preset: Preset) -> None:
    assert REQUIRED_KEYS <= set(preset.config)
    assert json.loads(json.dumps(preset.config)) == dict(preset.config)
    assert preset.config["loss"] in ("ce", "mse")
    assert preset.config["save_every"] % preset.config["eval_every"] == 0
    assert preset.config["max_steps"] % preset.config["eval_every"] == 0
    assert preset.description and "\n" not in preset.description
    for control in preset.controls:
        json.dumps(preset.resolve_config(control=control))


def test_make_data_is_deterministic_and_seed_dependent(preset: Preset) -> None:
    a = preset.make_data(preset.config, 0)
    assert _same_data(a, preset.make_data(preset.config, 0))
    b = preset.make_data(preset.config, 1)
    assert a.train_indices != b.train_indices


def test_splits_are_disjoint_and_consistent(preset: Preset) -> None:
    data = preset.make_data(preset.config, 0)
    train, val = set(data.train_indices), set(data.val_indices)
    assert len(train) == len(data.train_indices) and len(val) == len(data.val_indices)
    assert not train & val
    assert min(train | val) >= 0
    assert len(data.train_x) == len(data.train_y) == len(data.train_indices)
    assert len(data.val_x) == len(data.val_y) == len(data.val_indices)
    assert data.forget_eligible and all(0 <= i < len(data.train_indices) for i in data.forget_eligible)
    assert len(set(data.forget_eligible)) == len(data.forget_eligible)
    for y in (data.train_y, data.val_y):
        assert y.dtype == torch.long and int(y.min()) >= 0 and int(y.max()) < data.num_classes
    json.dumps(dict(data.info))


def test_make_model_is_deterministic_and_leaves_global_rng_alone(preset: Preset) -> None:
    state = torch.random.get_rng_state()
    a = preset.make_model(preset.config, 0)
    assert torch.equal(state, torch.random.get_rng_state())
    assert _same_weights(a, preset.make_model(preset.config, 0))
    assert not _same_weights(a, preset.make_model(preset.config, 1))


def test_model_outputs_logits_per_class(preset: Preset) -> None:
    data = preset.make_data(preset.config, 0)
    model = preset.make_model(preset.config, 0)
    with torch.no_grad():
        out = model(data.train_x[:5])
    assert out.shape == (5, data.num_classes)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_resolve_config_with_each_control(preset: Preset) -> None:
    assert preset.controls
    for control, overrides in preset.controls.items():
        cfg = preset.resolve_config(control=control)
        assert cfg["control"] == control and cfg["preset"] == preset.name
        for key, value in overrides.items():
            assert cfg[key] == value
        assert preset.resolve_config({"max_steps": 7}, control=control)["max_steps"] == 7


def test_unknown_control_is_a_usage_error(preset: Preset) -> None:
    with pytest.raises(UsageError):
        preset.resolve_config(control="no-such-control")


def test_controls_change_the_intended_knob() -> None:
    assert MODULAR.resolve_config(control="no-grok")["weight_decay"] == 0.0
    assert MODULAR_TRANSFORMER.resolve_config(control="no-grok")["weight_decay"] == 0.0
    assert DIGITS.resolve_config(control="standard-init")["init_scale"] == 1.0
    assert DIGITS.config["init_scale"] > 1.0


def test_modular_targets_are_the_sum_mod_p() -> None:
    data = MODULAR.make_data(MODULAR.config, 0)
    p = MODULAR.config["p"]
    x = torch.cat([data.train_x, data.val_x])
    y = torch.cat([data.train_y, data.val_y])
    assert torch.equal(y, (x[:, 0] + x[:, 1]) % p)
    assert sorted(data.train_indices + data.val_indices) == list(range(p * p))
    assert len(data.train_indices) == round(MODULAR.config["train_frac"] * p * p)
    # index i is the pair (i // p, i % p)
    i = data.train_indices[3]
    assert data.train_x[3].tolist() == [i // p, i % p]


def test_transformer_sequences_end_with_equals_token() -> None:
    cfg = MODULAR_TRANSFORMER.config
    data = MODULAR_TRANSFORMER.make_data(cfg, 0)
    assert data.train_x.shape[1] == 3 and bool((data.train_x[:, 2] == cfg["p"]).all())
    assert torch.equal(data.train_y, (data.train_x[:, 0] + data.train_x[:, 1]) % cfg["p"])


def test_transformer_last_position_shortcut_matches_a_full_causal_pass() -> None:
    model: OneLayerTransformer = MODULAR_TRANSFORMER.make_model(MODULAR_TRANSFORMER.config, 0)
    x = MODULAR_TRANSFORMER.make_data(MODULAR_TRANSFORMER.config, 0).train_x[:7]
    b, s = x.shape
    h, dh = model.n_heads, model.d_head
    with torch.no_grad():
        resid = model.embed(x) + model.pos[:s]
        q, k, v = (f(resid).view(b, s, h, dh).transpose(1, 2) for f in (model.q, model.k, model.v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh)
        scores = scores.masked_fill(torch.ones(s, s, dtype=torch.bool).triu(1), float("-inf"))
        resid = resid + model.o((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, -1))
        resid = resid + model.mlp_out(torch.relu(model.mlp_in(resid)))
        full = model.unembed(resid)[:, -1]
        assert torch.allclose(model(x), full, atol=1e-5)


def test_digits_split_is_stratified() -> None:
    data = DIGITS.make_data(DIGITS.config, 0)
    n_train = DIGITS.config["n_train"]
    assert len(data.train_indices) == n_train
    assert (
        data.train_x.shape[1] == 64 and float(data.train_x.max()) <= 1.0 and float(data.train_x.min()) >= 0.0
    )
    total = torch.bincount(torch.cat([data.train_y, data.val_y]), minlength=10)
    train = torch.bincount(data.train_y, minlength=10)
    expected = n_train * total / total.sum()
    assert bool(((train - expected).abs() < 1.0).all())


def test_digits_fixed_size_validation_part() -> None:
    cfg = DIGITS.resolve_config({"n_val": 300})
    data = DIGITS.make_data(cfg, 0)
    assert len(data.val_indices) == 300
    assert not set(data.val_indices) & set(data.train_indices)
    assert _same_data(data, DIGITS.make_data(cfg, 0))
