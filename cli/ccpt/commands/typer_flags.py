"""Show on/off flags in help without a type.

Typer 0.29 prints a type beside every option, flags included, so `--dry-run <bool>` reads as if the
flag took a value, which it does not. `hide_flag_types` gives a flag no type in help, as click and
earlier Typer releases did; options that take a value keep theirs (`--model <str>`). With a Typer
whose internals differ it does nothing.
"""

from __future__ import annotations

from typing import Any


def hide_flag_types() -> None:
    try:
        from typer.core import TyperOption
    except ImportError:
        return
    if "display_type_rich" not in vars(TyperOption) or getattr(TyperOption, "_ccpt_flags_patched", False):
        return
    display_type_rich = TyperOption.display_type_rich

    def display_type_unless_flag(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) and not getattr(self, "count", False):
            return None
        return display_type_rich(self, ctx)

    TyperOption.display_type_rich = display_type_unless_flag  # type: ignore[method-assign]
    TyperOption._ccpt_flags_patched = True  # type: ignore[attr-defined]
