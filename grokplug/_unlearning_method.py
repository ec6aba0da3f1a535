"""What an unlearning method is, for grokplug: a named object with defaults that changes a model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class UnlearningMethod:
    """Base class for methods registered through ``grokplug_register_methods``.

    Subclasses set the class attributes and implement :meth:`run`. ``run`` may change ``model`` in
    place and return ``None``, or return a (possibly new) model; it may build its own optimizer
    (the step monitor counts updates through PyTorch's global optimizer hook, so it sees them).

    * ``defaults``: hyperparameters for the offline presets (digits, modular);
    * ``cifar_defaults``: overrides for the paper's CIFAR-10 / ResNet-18 protocol;
    * ``iterative``: ``False`` for one-shot methods (e.g. SSD): steps-to-target is not applicable and
      ``strength_param`` names the knob to sweep instead.
    """

    name: ClassVar[str] = ""
    domain: ClassVar[str] = "vision"
    description: ClassVar[str] = ""
    defaults: ClassVar[Mapping[str, Any]] = {}
    cifar_defaults: ClassVar[Mapping[str, Any]] = {}
    iterative: ClassVar[bool] = True
    strength_param: ClassVar[str | None] = None

    def hyperparameters(self, profile: str = "offline", **overrides: Any) -> dict[str, Any]:
        """Defaults for ``profile`` (``offline`` or ``cifar``) with ``overrides`` applied; unknown names refused."""
        from .errors import UsageError

        params = dict(self.defaults)
        if profile == "cifar":
            params.update(self.cifar_defaults)
        unknown = sorted(set(overrides) - set(params))
        if unknown:
            raise UsageError(
                f"method {self.name!r} has no hyperparameter(s) {', '.join(unknown)}; it takes: {', '.join(sorted(params))}"
            )
        params.update(overrides)
        return params

    def run(self, model: Any, data: Any, **hparams: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, model: Any, data: Any, **hparams: Any) -> Any:
        return self.run(model, data, **self.hyperparameters(**hparams))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
