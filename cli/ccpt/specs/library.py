"""Finding specs: a built-in id, a YAML or Markdown file, or `FILE#id` for one spec of many."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path

from ccpt.errors import CcptError
from ccpt.resources import scaffolds_dir
from ccpt.specs.markdown_form import parse_markdown_specs
from ccpt.specs.model import TaskSpec
from ccpt.specs.placeholders import fill_parameters, parameter_key
from ccpt.specs.yaml_form import parse_yaml_specs

YAML_SUFFIXES = (".yaml", ".yml")
MARKDOWN_SUFFIXES = (".md", ".markdown")
SPEC_SUFFIXES = YAML_SUFFIXES + MARKDOWN_SUFFIXES


def builtin_specs_dir() -> Path:
    return scaffolds_dir() / "specs"


def read_spec_file(path: Path) -> list[TaskSpec]:
    """Every spec in a file, as written (placeholders not filled)."""
    if not path.is_file():
        raise CcptError(
            f"spec file not found: {path}", hint="give a .yaml/.md path or a built-in id (ccpt spec list)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CcptError(f"cannot read spec file {path}: {exc}") from None
    if path.suffix.lower() in MARKDOWN_SUFFIXES:
        return parse_markdown_specs(text, str(path))
    if path.suffix.lower() in YAML_SUFFIXES:
        return parse_yaml_specs(text, str(path))
    raise CcptError(f"{path}: not a spec file (expected .yaml, .yml or .md)")


def list_builtin_specs() -> list[TaskSpec]:
    """The built-in library (`scaffolds/specs/`), defaults filled in, sorted by id."""
    specs = _builtin_specs()
    return [fill_parameters(specs[key]) for key in sorted(specs)]


def _builtin_specs() -> dict[str, TaskSpec]:
    """The built-in specs by id, as written (so --set can still fill their placeholders)."""
    specs: dict[str, TaskSpec] = {}
    for path in sorted(builtin_specs_dir().iterdir()):
        if path.suffix.lower() not in SPEC_SUFFIXES or path.name.lower() == "readme.md":
            continue
        for spec in read_spec_file(path):
            if spec.id in specs:
                raise CcptError(f"built-in spec id '{spec.id}' is defined twice (second time in {path.name})")
            specs[spec.id] = spec
    return specs


def load_specs(ref: str | Path, overrides: Mapping[str, str] | None = None) -> list[TaskSpec]:
    """Every spec `ref` names (a built-in id, a file, or FILE#id), parameters filled.

    `overrides` (the `--set key=value` values) apply to each spec; a key that names no
    parameter of any of them is an error.
    """
    path, selector = _split_ref(ref)
    if path is None:
        return [fill_parameters(_builtin(str(ref)), overrides)]
    specs = read_spec_file(path)
    if selector:
        specs = [_select(specs, selector, path)]
    if overrides and len(specs) > 1:
        return _fill_each(specs, overrides)
    return [fill_parameters(spec, overrides) for spec in specs]


def load_spec(ref: str | Path, overrides: Mapping[str, str] | None = None) -> TaskSpec:
    """The one spec `ref` names; a file holding several needs `FILE#id` (the error lists them)."""
    specs = load_specs(ref, overrides)
    if len(specs) > 1:
        ids = ", ".join(spec.id for spec in specs)
        raise CcptError(
            f"{ref} holds {len(specs)} specs ({ids}); pick one",
            hint=f"write {ref}#{specs[0].id}",
        )
    return specs[0]


def _split_ref(ref: str | Path) -> tuple[Path | None, str | None]:
    """(path, selector) for a file reference, (None, None) for a built-in id."""
    if isinstance(ref, Path):
        return ref, None
    text = str(ref)
    if Path(text).is_file():
        return Path(text), None
    head, sep, selector = text.rpartition("#")
    if sep and (Path(head).is_file() or head.lower().endswith(SPEC_SUFFIXES)):
        return Path(head), selector or None
    if text.lower().endswith(SPEC_SUFFIXES) or "/" in text or "\\" in text:
        return Path(text), None
    return None, None


def _select(specs: list[TaskSpec], selector: str, path: Path) -> TaskSpec:
    for spec in specs:
        if spec.id == selector.lower():
            return spec
    ids = ", ".join(spec.id for spec in specs)
    raise CcptError(f"{path} has no spec '{selector}' (it holds: {ids})")


def _fill_each(specs: list[TaskSpec], overrides: Mapping[str, str]) -> list[TaskSpec]:
    """Each --set value goes to the specs of a file that have that parameter."""
    known = {parameter_key(name) for spec in specs for name in spec.parameters}
    unknown = [key for key in overrides if parameter_key(key) not in known]
    if unknown:
        raise CcptError(
            f"no spec here has a parameter '{unknown[0]}'", hint="run `ccpt spec check` to list them"
        )
    filled = []
    for spec in specs:
        keys = {parameter_key(name) for name in spec.parameters}
        filled.append(fill_parameters(spec, {k: v for k, v in overrides.items() if parameter_key(k) in keys}))
    return filled


def _builtin(name: str) -> TaskSpec:
    specs = _builtin_specs()
    key = name.strip().lower()
    if key in specs:
        return specs[key]
    # A task kind's name ("token-classification") points to the specs of that kind.
    of_kind = sorted(spec_id for spec_id, spec in specs.items() if spec.task_kind == key)
    close = difflib.get_close_matches(key, list(specs), n=3)
    if of_kind:
        hint = f"built-in specs of task kind {key}: {', '.join(of_kind)}"
    elif close:
        hint = f"did you mean {', '.join(close)}?"
    else:
        hint = "see `ccpt spec list`, or give a path to a .yaml/.md file"
    raise CcptError(f"no built-in spec '{name}' and no such file", hint=hint)
