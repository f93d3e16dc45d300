"""Keep Typer from importing pydantic for parameters that were not given.

Typer 0.29 coerces every parameter value through a runtime adapter it builds on first use, and
for most types that adapter is a pydantic `TypeAdapter`. So running any subcommand imports
pydantic (0.15-0.25 s on a 2-core machine) just to coerce the root's absent `--help` and
`--install-completion` flags, whose value is None, which coercion returns unchanged without
touching the adapter. `skip_adapters_for_absent_values` gives such a parameter, for that one
call, Typer's own pass-through adapter: the same result, no import. With a Typer whose
internals differ it does nothing.
"""

from __future__ import annotations

from typing import Any


def skip_adapters_for_absent_values() -> None:
    try:
        from typer._coercion import PassThroughRuntimeParam
        from typer.core import _TyperParameter
    except ImportError:
        return
    if "get_runtime_param" not in vars(_TyperParameter) or getattr(_TyperParameter, "_ccpt_patched", False):
        return
    process_value = _TyperParameter.process_value

    def process_value_lazily(self: Any, ctx: Any, value: Any) -> Any:
        if value is not None or getattr(self, "_runtime_param", None) is not None:
            return process_value(self, ctx, value)
        descriptor = self.type_descriptor
        self._runtime_param = PassThroughRuntimeParam(
            annotation=descriptor.annotation, parameter_info=descriptor.parameter_info
        )
        try:
            return process_value(self, ctx, value)
        finally:
            self._runtime_param = None

    _TyperParameter.process_value = process_value_lazily  # type: ignore[method-assign]
    _TyperParameter._ccpt_patched = True  # type: ignore[attr-defined]
