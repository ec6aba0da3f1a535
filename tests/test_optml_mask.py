"""OptmlAdapter with a saliency mask computed per run: ``mask(model, data)`` sees the loaded start and
that run's forget set, and the (stand-in, OPTML-shaped) RL applies it to every gradient."""

from __future__ import annotations

import json

import torch
from support_toolkits import write_checkouts

import grokplug
from grokplug.adapters import from_toolkit, patch_module


def test_callable_mask_sees_the_start_and_the_forget_set(digits_run_dir, tmp_path):
    root = write_checkouts(tmp_path) / "Unlearn-Saliency" / "Classification"
    seen = {}

    def first_layer_only(model, data):
        seen["weights"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        seen["n_forget"] = len(data.forget.dataset)
        first = next(iter(dict(model.named_parameters())))
        return {n: torch.full_like(p, 1.0 if n == first else 0.0) for n, p in model.named_parameters()}

    rl = from_toolkit(root, "RL", prepare=lambda tk: patch_module(tk, "trainer.train", train_with_rewind=None),
                      cuda_shim=True, mask=first_layer_only, args={"unlearn_epochs": 1, "weight_decay": 0.0})
    result = grokplug.unlearn(rl, source=digits_run_dir, start="grok", target=None, seed=0, forget_rate=0.15)

    start = grokplug.build_model(digits_run_dir)
    grokplug.load_checkpoint(start, digits_run_dir, "grok")
    assert all(torch.equal(seen["weights"][k], v) for k, v in start.state_dict().items())  # mask built at θ_grok
    eligible = json.loads((digits_run_dir / "splits.json").read_text())["forget_eligible"]
    assert seen["n_forget"] == round(0.15 * len(eligible))  # the run's own 15 % forget set
    after = dict(result.model.named_parameters())
    first = next(iter(after))
    assert not torch.equal(after[first], dict(start.named_parameters())[first])  # the unmasked tensor moved
    for name, param in start.named_parameters():  # every masked-out tensor kept θ_grok exactly (no decay)
        if name != first:
            assert torch.equal(after[name], param), name
    assert result.total_steps > 0
