"""Split a Markdown file into its YAML front matter and body, cheaply.

Agent files keep their front matter to flat `key: value` lines, which a few string operations
read in microseconds; `ccpt agent list` and `ccpt agent --help` stay fast that way. Anything
richer (quotes with escapes, lists, block scalars) falls back to PyYAML, imported only then.
"""

from __future__ import annotations

import re
from typing import Any

_KEY_LINE = re.compile(r"^([A-Za-z_][\w-]*):(?:\s+(.*))?$")
_NEEDS_YAML = tuple("'\"[{|>&*!%@`")


class FrontMatterError(ValueError):
    """The file does not start with a well-formed `---` block (message says what is wrong)."""


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(front matter mapping, body) of a Markdown file that starts with a `---` block."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise FrontMatterError("no front matter: the file must start with a line `---`")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise FrontMatterError("front matter is not closed by a second `---` line") from None
    block = lines[1:end]
    body = "\n".join(lines[end + 1 :]).strip()
    data = _read_flat(block)
    if data is None:
        data = _read_yaml("\n".join(block))
    return data, body


def _read_flat(block: list[str]) -> dict[str, Any] | None:
    """Plain `key: value` lines; None when any line needs a real YAML parser."""
    data: dict[str, Any] = {}
    for line in block:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _KEY_LINE.match(line)
        if not match:
            return None
        key, value = match.group(1), (match.group(2) or "").strip()
        if value.startswith(_NEEDS_YAML) or " #" in value or key in data:
            return None
        data[key] = _scalar(value)
    return data


def _scalar(value: str) -> Any:
    if value == "" or value in ("~", "null"):
        return None
    if value in ("true", "false"):
        return value == "true"
    return value


def _read_yaml(block: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (front matter line {mark.line + 1})" if mark else ""
        raise FrontMatterError(
            f"front matter is not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FrontMatterError("front matter must be a mapping of `key: value` lines")
    return data
