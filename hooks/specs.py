"""Hook specifications, grouped by the phase of the flow in which they fire.

    track → run dir → resolve → unlearn → evaluate → compare

Every hook is named ``grokplug_<phase>_<event>``. Call conventions (pluggy's):

* hooks are called with keyword arguments only;
* an implementation may accept fewer arguments than the specification (it opts in to the ones it
  names), never more;
* an implementation argument with a default value is **not** passed by pluggy. Do not give defaults.

"Distributed use" says which processes call the hook when the job runs under ``accelerate launch``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import hookspec

if TYPE_CHECKING:  # keep `import grokplug` cheap: torch and friends are only needed by callers
    import torch

    from grokplug._detect import GrokReport, PhaseChange
    from grokplug._types import CheckpointRef, CheckpointRequest, RunHistory
    from grokplug._unlearn_types import UnlearnContext, UnlearnResult

#: ``register(name, obj, *, aliases=())``: the callback registration hooks receive.
RegisterFn = Callable[..., None]


# ---------------------------------------------------------------------------------------------
# Registration: what the plugins offer. Called once, when the plugin manager first needs them.
# ---------------------------------------------------------------------------------------------


@hookspec
def grokplug_register_methods(register: RegisterFn) -> None:
    """Register unlearning methods.

    Fires once per process, the first time grokplug needs the method table (``grokplug plugins``,
    ``grokplug unlearn``, :func:`grokplug.unlearn`).

    :param register: call ``register(name, method, aliases=())`` once per method. ``method`` is a
        method object: by convention callable, with a ``domain`` (``"vision"`` or ``"llm"``) and a
        docstring whose first line describes it. Two plugins registering the same name is an error
        that names both plugins. Names and aliases match ``[A-Za-z0-9][A-Za-z0-9._+-]{0,63}`` (no
        spaces, separators or control characters: they end up in listings and file names); any
        other name is a :class:`~grokplug.errors.PluginError` naming the plugin.
    :returns: nothing; results are collected through ``register``.

    Distributed use: called on every rank; each process builds the same table.
    """


@hookspec
def grokplug_register_metrics(register: RegisterFn) -> None:
    """Register evaluation metrics.

    Fires once per process, the first time grokplug needs the metric table.

    :param register: call ``register(name, metric, aliases=())`` once per metric. ``metric`` is a
        callable or an object with a ``compute`` method; duplicates across plugins are an error.
    :returns: nothing.

    Distributed use: called on every rank.
    """


@hookspec
def grokplug_register_presets(register: RegisterFn) -> None:
    """Register training presets (a task, a model and a recipe that groks).

    Fires once per process, the first time grokplug needs the preset table (``grokplug train``).

    :param register: call ``register(name, preset, aliases=())`` with a :class:`grokplug.Preset`.
    :returns: nothing.

    Distributed use: called on every rank.
    """


@hookspec
def grokplug_register_domains(register: RegisterFn) -> None:
    """Register unlearning domains: what the orchestrator needs to unlearn one kind of model.

    Fires once per process, the first time grokplug needs the domain table (:func:`grokplug.unlearn`,
    :func:`grokplug.run_data`, ``grokplug unlearn``, ``grokplug compare``). The orchestrator never
    imports a domain package: for a method whose ``domain`` is ``"vision"`` it asks the domain
    registered as ``"vision"`` for the run's data and splits, the step monitor's probe, the
    evaluation (its metrics come from the metric registry), the retrain/retain reference, how to run
    the method under the monitor and how to save the result. The built-in ``vision`` and ``llm``
    domains are registered exactly this way (``grokplug.hooks.vision``, ``grokplug.hooks.llm``).

    :param register: call ``register(name, domain)`` with a :class:`grokplug.UnlearningDomain`
        subclass instance. Two plugins registering one domain name is an error that names both.
    :returns: nothing.

    Distributed use: called on every rank.
    """


# ---------------------------------------------------------------------------------------------
# Checkpoints: where a grok-aware start comes from.
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def grokplug_resolve_checkpoint(request: CheckpointRequest) -> CheckpointRef | None:
    """Resolve a request for a starting checkpoint (θ_grok, θ_pre, final or best).

    Fires whenever a method asks for a start: :func:`grokplug.request_checkpoint`,
    :func:`grokplug.load_checkpoint`, the :func:`grokplug.grok_aware` decorator, ``grokplug unlearn``.

    Stops at the first non-``None`` result (firstresult). The built-in provider
    (``grokplug.hooks.local_rundir``) answers for local run directories and runs last, so a plugin
    can serve other sources (a hub revision, an experiment tracker) or override local resolution.

    :param request: the source, the phase asked for, and the fallback phase.
    :returns: a :class:`grokplug.CheckpointRef` whose ``path`` is a local safetensors file and whose
        ``sha256`` is verified on load, or ``None`` if this plugin does not serve ``request.source``.
        Raise :class:`grokplug.errors.CheckpointError` for a source it serves but cannot satisfy.
        Any other return type is a :class:`~grokplug.errors.PluginError` naming the plugin and hook.

    Distributed use: called on every rank; every rank must obtain the same reference.
    """


@hookspec(firstresult=True)
def grokplug_read_history(request: CheckpointRequest) -> RunHistory | None:
    """Read the eval history of a run grokplug did not write (an HF Trainer ``output_dir``, a W&B run ...).

    Fires from ``grokplug inspect`` and :func:`grokplug.external.read_history` when the source is
    not a grokplug run directory. Stops at the first non-``None`` result (firstresult). The built-in
    ``grokplug.hooks.hf_trainer_run`` reads HF Trainer output directories; a provider that also
    serves checkpoints implements ``grokplug_resolve_checkpoint`` with
    :func:`grokplug.external.resolve_in_history`.

    :param request: ``request.source`` names the run; ``request.options`` holds provider options
        (for HF Trainer output: ``val_metric``, ``train_metric``, ``nearest``, ``detector``).
    :returns: a :class:`grokplug.external.RunHistory` (eval records with ``step``, ``train_acc``,
        ``val_acc`` and the steps that have a checkpoint), or ``None`` if this plugin does not read
        ``request.source``.

    Distributed use: called on the process that asks (the CLI, or every rank that resolves).
    """


@hookspec
def grokplug_on_checkpoint_saved(ref: CheckpointRef) -> None:
    """A tracked training run has just saved a checkpoint (atomically; its hash is in ``ref``).

    Fires after the weights and ``meta.json`` are on disk and the manifest names them, from the
    tracker's save path (which may be a background thread when saving is asynchronous).

    :param ref: the saved checkpoint; ``ref.phase`` is ``"candidate"``.
    :returns: nothing.

    Distributed use: main process only (the only one that writes).
    """


@hookspec(firstresult=True)
def grokplug_detect_phases(
    history: Sequence[Mapping[str, Any]], params: Mapping[str, Any], checkpoint_steps: Sequence[int] | None
) -> GrokReport | None:
    """Classify a training history and choose θ_pre and θ_grok.

    Fires from :func:`grokplug.detect_phases`, ``grokplug inspect`` and at the end of a tracked run.
    Stops at the first non-``None`` result (firstresult). The built-in detector
    (``grokplug.hooks.default_detector``, trylast) implements the rules of ``grokplug/_detect.py``; a plugin
    replaces it by returning a report first.

    :param history: eval records sorted by step (``step``, ``train_acc``, ``val_acc`` and optional
        ``train_loss``, ``val_loss`` ...).
    :param params: detector parameters (``tau_mem``, ``k``, ``gain_min`` ...), possibly empty.
    :param checkpoint_steps: steps that have a checkpoint; θ_pre and θ_grok must be chosen among
        them (``None``: every eval step qualifies).
    :returns: a :class:`grokplug.GrokReport`, or ``None`` to defer to the next detector. Any other
        return type is a :class:`~grokplug.errors.PluginError` naming the plugin and hook.

    Distributed use: main process (the report is written to ``grok.json`` and read by the others).
    """


@hookspec
def grokplug_on_phase_change(change: PhaseChange) -> None:
    """The online detector moved a tracked run to a new phase (e.g. ``memorized`` → ``plateau``).

    Fires from :meth:`grokplug.GrokTracker.log_eval` on the eval where the change is confirmed.

    :param change: the step, previous and new phase, and the run directory.
    :returns: nothing.

    Distributed use: main process only.
    """


# ---------------------------------------------------------------------------------------------
# Training: hooks into the optimisation of a tracked run.
# ---------------------------------------------------------------------------------------------


@hookspec
def grokplug_transform_gradients(model: torch.nn.Module, step: int) -> None:
    """Transform gradients in place after ``backward()`` and before ``optimizer.step()``.

    Fires from :meth:`grokplug.GrokTracker.before_optimizer_step` on every training step of a
    tracked run; this is where grokking accelerators plug in (the built-in Grokfast EMA filter,
    ``grokplug.hooks.grokfast``, is one; it is off unless enabled).

    :param model: the model being trained; gradients are in ``p.grad`` (``None`` for frozen params).
    :param step: the optimizer step about to be taken (0-based).
    :returns: nothing; modify ``p.grad`` in place.

    Distributed use: every rank, after gradients are synchronised, so parameters stay identical.
    """


# ---------------------------------------------------------------------------------------------
# Unlearning: around and inside an unlearning run.
# ---------------------------------------------------------------------------------------------


@hookspec
def grokplug_before_unlearn(context: UnlearnContext) -> None:
    """An unlearning run is about to start from a resolved checkpoint.

    Fires from the one unlearning orchestrator (:func:`grokplug.unlearn`, which ``grokplug unlearn``,
    compare, ``TrainerAdapter.unlearn`` and the :func:`grokplug.grok_aware` decorator all use), after
    the start checkpoint is loaded into the model and before the method runs.

    :param context: the method name, the model, the start reference and the run's settings.
    :returns: nothing; a plugin may attach state to ``context.extras``.

    Distributed use: every rank.
    """


@hookspec
def grokplug_on_unlearn_step(context: UnlearnContext, step: int, metrics: Mapping[str, float]) -> bool | None:
    """The step monitor evaluated the model during unlearning.

    Fires every ``eval_every`` optimizer updates (and at step 0) while a method runs.

    :param context: the running unlearning job.
    :param step: optimizer updates taken so far.
    :param metrics: the domain's probe at this step: at least ``forget_acc`` and ``retain_acc`` for
        every built-in domain; empty for a ``@grok_aware`` function decorated without ``probe=``.
    :returns: ``True`` to ask the method to stop now; ``None``/``False`` to continue. The run stops
        if any plugin asks. Any other value (``"stop"``, ``1``) is a :class:`~grokplug.errors.PluginError`
        naming the plugin, never a stop.

    Distributed use: every rank, with the same gathered metrics, so every rank stops together.
    """


@hookspec
def grokplug_after_unlearn(context: UnlearnContext, result: UnlearnResult) -> None:
    """An unlearning run finished (normally or stopped early by the monitor).

    Fires after the method returns and before the result is handed back or written.

    :param context: the finished job.
    :param result: the unlearned model, steps-to-target and metrics.
    :returns: nothing.

    Distributed use: every rank.
    """
