"""What an unlearning method is, for grokplug: a named object with defaults that changes a model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class UnlearningMethod:
    """Base class for methods registered through ``grokplug_register_methods``.

    Subclasses set the class attributes and implement :meth:`run`. ``run`` may change ``model`` in
    place and return ``None``, or return a (possibly new) model; it may build its own optimizer
    (the step monitor counts updates through PyTorch's global optimizer hook, so it sees them).

    * ``defaults``: hyperparameters for the offline presets (profile ``"offline"``);
    * ``cifar_defaults``: overrides for the paper's CIFAR-10 / ResNet-18 protocol (profile ``"cifar"``);
    * ``preset_defaults``: ``{preset name: overrides}``, one profile per built-in preset; profile
      ``"auto"`` (what ``grokplug unlearn`` and ``compare`` use by default) picks the run's preset
      profile when the method has one, else ``"offline"`` (:func:`resolve_profile`);
    * ``iterative``: ``False`` for one-shot methods (e.g. SSD): steps-to-target is not applicable and
      ``strength_param`` names the knob to sweep instead;
    * ``strength_sweep``: the values of ``strength_param`` that ``grokplug compare`` sweeps, **weakest
      first**, to find each start's weakest strength reaching the target (damage at matched forgetting).
    """

    name: ClassVar[str] = ""
    domain: ClassVar[str] = "vision"
    description: ClassVar[str] = ""
    defaults: ClassVar[Mapping[str, Any]] = {}
    cifar_defaults: ClassVar[Mapping[str, Any]] = {}
    preset_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    iterative: ClassVar[bool] = True
    strength_param: ClassVar[str | None] = None
    strength_sweep: ClassVar[tuple[float, ...]] = ()

    def hyperparameters(self, profile: str = "offline", **overrides: Any) -> dict[str, Any]:
        """Defaults for ``profile`` (``offline``, ``cifar`` or a preset name) with ``overrides`` applied.

        Unknown hyperparameter names are refused. ``"auto"`` here means ``"offline"``: only the caller
        knows the run's preset (see :func:`resolve_profile`).
        """
        from .errors import UsageError

        params = dict(self.defaults)
        if profile == "cifar":
            params.update(self.cifar_defaults)
        elif profile in self.preset_defaults:
            params.update(self.preset_defaults[profile])
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


#: profile names every method understands; a preset name is a profile too where the method defines one
PROFILES = ("auto", "offline", "cifar")


def resolve_profile(method: Any, profile: str, preset: str | None) -> str:
    """``"auto"`` → ``preset`` when ``method`` has a profile for it, else ``"offline"``; other names unchanged."""
    if profile != "auto":
        return profile
    if preset is not None and preset in (getattr(method, "preset_defaults", None) or {}):
        return preset
    return "offline"
