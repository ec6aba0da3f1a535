"""A sample plugin module, written the way a third-party author would write one."""

from __future__ import annotations

from grokplug import hookimpl


class NoOpMethod:
    """Leaves the model unchanged (a sample method)."""

    domain = "vision"

    def __call__(self, model, **kwargs):
        return model


@hookimpl
def grokplug_register_methods(register):
    register("sample-noop", NoOpMethod(), aliases=["noop"])
