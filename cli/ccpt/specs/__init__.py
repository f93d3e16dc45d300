"""INVEST/CRPG task specs: the model, the YAML and Markdown readers, the INVEST lint, the prompt.

The public surface other parts of ccpt use:

- `load_spec(ref, overrides)`: a built-in id, a .yaml/.yml/.md file, or `FILE#id`; `overrides`
  are `--set key=value` values that fill `[placeholder]` parameters.
- `render_prompt(spec)`: the text agents receive (`ccpt spec prompt`).
- `list_builtin_specs()`, `dump_yaml(spec)`, `check_spec(spec)`.

Nothing here imports yaml at module level, so importing this package stays cheap.
"""

from __future__ import annotations

from ccpt.specs.library import builtin_specs_dir, list_builtin_specs, load_spec, load_specs, read_spec_file
from ccpt.specs.markdown_form import dump_markdown, parse_markdown_specs
from ccpt.specs.model import SCAFFOLD_KINDS, TASK_KINDS, CrpgItem, TaskSpec, Threshold
from ccpt.specs.prompt import render_prompt
from ccpt.specs.thresholds import extract_threshold
from ccpt.specs.yaml_form import dump_yaml, dump_yaml_all, parse_yaml_specs

__all__ = [
    "SCAFFOLD_KINDS",
    "TASK_KINDS",
    "CrpgItem",
    "TaskSpec",
    "Threshold",
    "builtin_specs_dir",
    "dump_markdown",
    "dump_yaml",
    "dump_yaml_all",
    "extract_threshold",
    "list_builtin_specs",
    "load_spec",
    "load_specs",
    "parse_markdown_specs",
    "parse_yaml_specs",
    "read_spec_file",
    "render_prompt",
]
