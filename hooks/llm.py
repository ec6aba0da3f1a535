"""The built-in LLM domain: its methods (open-unlearning's Trainer subclasses), TOFU metrics, tofu-tiny preset, domain.

Registered names and the spellings OU uses as aliases: ``llm-ga`` (GradAscent), ``llm-graddiff``
(GradDiff-LLM), ``npo`` (NPO), ``simnpo`` (SimNPO), ``idkdpo`` (IdkDPO, DPO), ``rmu`` (RMU). The
vision methods already own ``ga``/``graddiff``/``GradDiff``, hence the ``llm-`` prefixes. Neither
torch nor transformers is imported to register them: the Trainer classes load on first use.
"""

from __future__ import annotations

from typing import Any

from grokplug.hooks.specs import RegisterFn

from . import hookimpl

#: registry name -> aliases
METHOD_ALIASES: dict[str, tuple[str, ...]] = {
    "llm-ga": ("GradAscent",),
    "llm-graddiff": ("GradDiff-LLM",),
    "npo": ("NPO",),
    "simnpo": ("SimNPO",),
    "idkdpo": ("IdkDPO", "DPO"),
    "rmu": ("RMU",),
}


@hookimpl
def grokplug_register_methods(register: RegisterFn) -> None:
    from grokplug.llm.methods import LLM_METHODS

    for method_cls in LLM_METHODS:
        register(method_cls.name, method_cls(), aliases=METHOD_ALIASES[method_cls.name])


@hookimpl
def grokplug_register_domains(register: RegisterFn) -> None:
    from grokplug.llm.domain import LLMDomain

    register("llm", LLMDomain())


class TofuMetric:
    """One of the TOFU ``evaluate`` modules shipped in ``grokplug/llm/metrics/`` (loaded by path on first use)."""

    domain = "llm"

    def __init__(self, name: str) -> None:
        self.name = name
        self.description = f"TOFU metric {name} (evaluate module grokplug/llm/metrics/{name})"

    def compute(self, **kwargs: Any) -> Any:
        from grokplug.llm.evaluation import load_metric

        return load_metric(self.name).compute(**kwargs)


#: the evaluate modules in grokplug/llm/metrics/ (kept equal to grokplug.llm.evaluation.METRIC_NAMES by a test)
TOFU_METRICS = ("tofu_probability", "tofu_rouge", "truth_ratio", "forget_quality", "model_utility", "tofu_mia",
                "extraction_strength", "exact_memorization")


def evaluate_tofu(*args: Any, **kwargs: Any) -> Any:
    """The TOFU suite on one model (forget quality, model utility, probability, ROUGE, truth ratio, MIA ...)."""
    from grokplug.llm.evaluation import evaluate_tofu as run

    return run(*args, **kwargs)


evaluate_tofu.domain = "llm"  # type: ignore[attr-defined]


@hookimpl
def grokplug_register_metrics(register: RegisterFn) -> None:
    register("evaluate_tofu", evaluate_tofu)
    for name in TOFU_METRICS:
        register(name, TofuMetric(name))


@hookimpl
def grokplug_register_presets(register: RegisterFn) -> None:
    from grokplug.llm.preset import TOFU_TINY
    from grokplug.llm.rule_preset import TOFU_RULE

    register(TOFU_RULE.name, TOFU_RULE)
    register(TOFU_TINY.name, TOFU_TINY)
