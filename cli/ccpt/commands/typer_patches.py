"""Two small corrections to Typer 0.29, applied once when the app loads.

- `skip_adapters_for_absent_values`: Typer coerces every parameter value through a runtime
  adapter it builds on first use, and for most types that adapter is a pydantic `TypeAdapter`.
  So running any subcommand imports pydantic (0.15-0.25 s on a 2-core machine) just to coerce the
  root's absent `--help` and `--install-completion` flags, whose value is None, which coercion
  returns unchanged without touching the adapter. Such a parameter gets, for that one call,
  Typer's own pass-through adapter: the same result, no import.
- `hide_flag_types`: Typer prints a type beside every option, flags included, so `--dry-run
  <bool>` reads as if the flag took a value, which it does not. A flag gets no type in help, as
  in click and earlier Typer releases; options that take a value keep theirs (`--model <str>`).

With a Typer whose internals differ, each does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _replace_method(cls: type, name: str, make: Callable[[Any], Any]) -> None:
    """Set `cls.name` to `make(original)`, once, if `cls` defines `name` itself."""
    marker = f"_ccpt_replaced_{name}"
    if name in vars(cls) and not getattr(cls, marker, False):
        setattr(cls, name, make(vars(cls)[name]))
        setattr(cls, marker, True)


def skip_adapters_for_absent_values() -> None:
    try:
        from typer._coercion import PassThroughRuntimeParam
        from typer.core import _TyperParameter
    except ImportError:
        return
    if "get_runtime_param" not in vars(_TyperParameter):
        return

    def make(process_value: Any) -> Any:
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

        return process_value_lazily

    _replace_method(_TyperParameter, "process_value", make)


def hide_flag_types() -> None:
    try:
        from typer.core import TyperOption
    except ImportError:
        return

    def make(display_type_rich: Any) -> Any:
        def display_type_unless_flag(self: Any, ctx: Any) -> str | None:
            if getattr(self, "is_flag", False) and not getattr(self, "count", False):
                return None
            return display_type_rich(self, ctx)

        return display_type_unless_flag

    _replace_method(TyperOption, "display_type_rich", make)
