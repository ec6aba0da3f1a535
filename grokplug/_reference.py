"""``retain_only_reference``: a model trained without the forget set, scored on the run's split (any domain).

The unlearning literature's gold standard: what a model that never saw the forget set scores on it. Vision
retrains the run's preset from scratch on the retain set; TOFU-style runs train the retain model with the
run's recipe on the retain split (cached beside the run). The run's domain builds it
(``UnlearningDomain.reference`` with the ``retrain`` target), so this module imports no domain package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._deprecation import deprecated_alias
from ._resolve import Source
from .plugins import get_plugin_manager

__all__ = ["retain_only_reference", "retrain_reference"]


def retain_only_reference(source: Source, data: Any = None, *, seed: int = 0, domain: str | None = None,
                          **options: Any) -> Mapping[str, Any] | None:
    """The metrics of a model trained on the retain set only (its ``forget_acc`` is the ``retrain`` target).

    ``data``: the split (default: :func:`grokplug.run_data` for the options the domain's data takes, e.g.
    ``forget_rate`` or ``forget_split``). Other options go to the domain's reference (vision: ``max_steps``
    caps the retraining). ``domain`` defaults to the run's preset's domain.
    """
    from ._unlearn import run_domain

    dom = get_plugin_manager().domains.get(domain) if domain is not None else run_domain(source)
    data_options = {k: v for k, v in options.items() if k in dom.options}
    if data is None:
        data = dom.run_data(source, seed=seed, options=data_options)
    return dom.reference(source, data, seed=seed, target="retrain", options=options)


retrain_reference = deprecated_alias(retain_only_reference, "grokplug.retrain_reference", "grokplug.retain_only_reference")
