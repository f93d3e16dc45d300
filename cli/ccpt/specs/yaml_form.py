"""The YAML form of a task spec: a reader that names file, line and field on bad input, and a writer.

The schema is `TaskSpec.to_dict()`:

    id: image-classification          # lowercase letters, digits, '-', '_', '.'
    title: Digit classifier
    task_kind: image-classification   # one of TASK_KINDS
    story: {as_a: ..., i_want: ..., so_that: ...}
    points: 3
    modality: vision
    prompt: |
      free text the agents receive
    lead_role: TestArchitect
    acceptance:                       # Given/When/Then mappings, or one sentence each
      - {given: ..., when: ..., then: ...}
    constraints:                      # each a string, or {text, threshold: {metric, op, value, unit}}
      - Model size under 10MB
    rewards: [...]
    penalties: [...]
    goal_state: [...]
    depends_on: [other-spec-id]
    parameters: {GPU memory: "24"}    # placeholder defaults; null = open
    extra_sections: {Notes: [...]}
    scaffold: {dataset: builtin, model_name: "", precision: auto, distributed: ddp}

A file may hold several specs as YAML documents separated by `---` (or a top-level list).
A CRPG item given as a plain string gets its threshold read from its text.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ccpt.errors import CcptError
from ccpt.specs.model import (
    COMPARATORS,
    TASK_KINDS,
    Comparison,
    Criterion,
    CrpgItem,
    Story,
    TaskSpec,
    Threshold,
)
from ccpt.specs.placeholders import CRPG_SECTIONS, discover_parameters
from ccpt.specs.thresholds import explicit_threshold, extract_threshold

if TYPE_CHECKING:
    import yaml

SPEC_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
FIELDS = (
    "id",
    "title",
    "task_kind",
    "story",
    "points",
    "modality",
    "prompt",
    "lead_role",
    "acceptance",
    "constraints",
    "rewards",
    "penalties",
    "goal_state",
    "depends_on",
    "parameters",
    "extra_sections",
    "scaffold",
)
STORY_FIELDS = ("as_a", "i_want", "so_that")
CRITERION_FIELDS = ("given", "when", "then")


class SpecFileError(CcptError):
    """Malformed spec input, located: `FILE:LINE: field 'x': what is wrong`."""

    def __init__(self, source: str, line: int | None, field: str | None, problem: str) -> None:
        where = f"{source}:{line}" if line else source
        what = f"field '{field}': {problem}" if field else problem
        super().__init__(f"{where}: {what}", hint="fix the spec file and run `ccpt spec check` on it")
        self.source, self.line, self.field = source, line, field


def parse_yaml_specs(text: str, source: str = "<spec>") -> list[TaskSpec]:
    """Every spec in a YAML text (one document, several `---` documents, or a list)."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        nodes = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                nodes.append(node)
        reader = _NodeReader(loader, source)
        specs: list[TaskSpec] = []
        for node in nodes:
            if isinstance(node, yaml.SequenceNode):
                specs.extend(reader.spec(item, f"[{i}]") for i, item in enumerate(node.value))
            else:
                specs.append(reader.spec(node, ""))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise SpecFileError(source, line, None, f"not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SpecFileError(source, None, None, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if not specs:
        raise SpecFileError(source, None, None, "holds no task spec (the file is empty)")
    return specs


class _NodeReader:
    """Builds TaskSpecs from yaml nodes, checking each field where its line number is known."""

    def __init__(self, loader: yaml.SafeLoader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.key_nodes: dict[int, yaml.Node] = {}  # value node -> its key, for errors about the key

    def fail(self, node: yaml.Node, field: str, problem: str) -> SpecFileError:
        return SpecFileError(self.source, node.start_mark.line + 1, field, problem)

    def mapping(self, node: yaml.Node, field: str) -> dict[str, yaml.Node]:
        import yaml

        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, field or "(top level)", f"expected a mapping, found {_kind(node)}")
        result: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            result[str(key)] = value_node
            self.key_nodes[id(value_node)] = key_node
        return result

    def sequence(self, node: yaml.Node, field: str) -> list[yaml.Node]:
        import yaml

        if isinstance(node, yaml.ScalarNode) and self.value(node) is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, field, f"expected a list, found {_kind(node)}")
        return list(node.value)

    def value(self, node: yaml.Node) -> Any:
        return self.loader.construct_object(node, deep=True)

    def text(self, node: yaml.Node, field: str, required: bool = False) -> str:
        value = self.value(node)
        if value is None and not required:
            return ""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(node, field, f"expected text, found {_kind(node)}")
        text = str(value).strip()
        if required and not text:
            raise self.fail(node, field, "must not be empty")
        return text

    def check_keys(self, fields: dict[str, yaml.Node], allowed: tuple[str, ...], where: str) -> None:
        for key, node in fields.items():
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"known fields: {', '.join(allowed)}"
                raise self.fail(
                    self.key_nodes.get(id(node), node), f"{where}{key}", f"unknown field ({hint})"
                )

    def spec(self, node: yaml.Node, where: str) -> TaskSpec:
        fields = self.mapping(node, where)
        self.check_keys(fields, FIELDS, f"{where}." if where else "")
        for required in ("id", "title"):
            if required not in fields:
                raise self.fail(node, f"{where}{required}", "missing (every spec needs an id and a title)")
        spec_id = self.text(fields["id"], "id", required=True)
        if not SPEC_ID.match(spec_id):
            raise self.fail(
                fields["id"], "id", f"'{spec_id}' must be lowercase letters, digits, '-', '_' or '.'"
            )
        task_kind = self.text(fields["task_kind"], "task_kind") if "task_kind" in fields else ""
        if task_kind and task_kind not in TASK_KINDS:
            raise self.fail(
                fields["task_kind"], "task_kind", f"'{task_kind}' is not one of {', '.join(TASK_KINDS)}"
            )
        spec = TaskSpec(
            id=spec_id, title=self.text(fields["title"], "title", required=True), task_kind=task_kind
        )
        readers: dict[str, Callable[[yaml.Node], None]] = {
            "story": lambda n: setattr(spec, "story", self.story(n)),
            "points": lambda n: setattr(spec, "points", self.points(n)),
            "modality": lambda n: setattr(spec, "modality", self.text(n, "modality")),
            "prompt": lambda n: setattr(spec, "prompt", self.text(n, "prompt")),
            "lead_role": lambda n: setattr(spec, "lead_role", self.text(n, "lead_role") or None),
            "acceptance": lambda n: setattr(spec, "acceptance", self.acceptance(n)),
            "depends_on": lambda n: setattr(spec, "depends_on", self.names(n, "depends_on")),
            "parameters": lambda n: setattr(spec, "parameters", self.parameters(n)),
            "extra_sections": lambda n: setattr(spec, "extra_sections", self.extra_sections(n)),
            "scaffold": lambda n: setattr(spec, "scaffold", self.scaffold(n)),
        }
        for section in CRPG_SECTIONS:

            def read_section(node: yaml.Node, section: str = section) -> None:
                setattr(spec, section, self.items(node, section))

            readers[section] = read_section
        for key, value_node in fields.items():
            if key in readers:
                readers[key](value_node)
        return discover_parameters(spec)

    def story(self, node: yaml.Node) -> Story:
        fields = self.mapping(node, "story")
        self.check_keys(fields, STORY_FIELDS, "story.")
        return Story(**{key: self.text(value, f"story.{key}") for key, value in fields.items()})

    def points(self, node: yaml.Node) -> int | None:
        value = self.value(node)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(node, "points", f"expected a whole number of story points, found {value!r}")
        return value

    def acceptance(self, node: yaml.Node) -> list[Criterion]:
        import yaml

        criteria = []
        for i, item in enumerate(self.sequence(node, "acceptance")):
            field = f"acceptance[{i}]"
            if isinstance(item, yaml.ScalarNode):
                criteria.append(parse_criterion(self.text(item, field, required=True)))
                continue
            fields = self.mapping(item, field)
            self.check_keys(fields, CRITERION_FIELDS, f"{field}.")
            criteria.append(Criterion(**{k: self.text(v, f"{field}.{k}") for k, v in fields.items()}))
        return criteria

    def items(self, node: yaml.Node, section: str) -> list[CrpgItem]:
        import yaml

        items = []
        for i, item in enumerate(self.sequence(node, section)):
            field = f"{section}[{i}]"
            if isinstance(item, yaml.ScalarNode):
                text, pinned = explicit_threshold(self.text(item, field, required=True))
                items.append(CrpgItem(text, pinned or extract_threshold(text, section)))
                continue
            fields = self.mapping(item, field)
            if len(fields) == 1 and not set(fields) & {"text", "threshold"}:
                raise self.fail(
                    item, field, "read as a mapping because of ': ' in it; put the item in quotes"
                )
            self.check_keys(fields, ("text", "threshold"), f"{field}.")
            if "text" not in fields:
                raise self.fail(item, f"{field}.text", "missing (each item needs its text)")
            text = self.text(fields["text"], f"{field}.text", required=True)
            threshold_node = fields.get("threshold")
            if threshold_node is None or self.value(threshold_node) is None:
                threshold = extract_threshold(text, section)
            else:
                threshold = self.threshold(threshold_node, f"{field}.threshold")
            items.append(CrpgItem(text, threshold))
        return items

    def threshold(self, node: yaml.Node, field: str) -> Threshold:
        fields = self.mapping(node, field)
        self.check_keys(fields, ("metric", "op", "value", "unit"), f"{field}.")
        for key in ("metric", "op", "value"):
            if key not in fields:
                raise self.fail(node, f"{field}.{key}", "missing (a threshold is metric, op and value)")
        op = self.text(fields["op"], f"{field}.op")
        if op not in COMPARATORS:
            raise self.fail(fields["op"], f"{field}.op", f"'{op}' is not one of {', '.join(COMPARATORS)}")
        value = self.value(fields["value"])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(fields["value"], f"{field}.value", f"expected a number, found {value!r}")
        unit = self.text(fields["unit"], f"{field}.unit") if "unit" in fields else None
        metric = self.text(fields["metric"], f"{field}.metric", required=True)
        return Threshold(metric, cast(Comparison, op), float(value), unit or None)

    def names(self, node: yaml.Node, field: str) -> list[str]:
        import yaml

        if isinstance(node, yaml.ScalarNode):
            text = self.text(node, field)
            return [part.strip() for part in text.split(",") if part.strip()]
        return [
            self.text(item, f"{field}[{i}]", required=True)
            for i, item in enumerate(self.sequence(node, field))
        ]

    def parameters(self, node: yaml.Node) -> dict[str, str | None]:
        fields = self.mapping(node, "parameters")
        return {name: (self.text(value, f"parameters.{name}") or None) for name, value in fields.items()}

    def extra_sections(self, node: yaml.Node) -> dict[str, list[str]]:
        import yaml

        sections = {}
        for name, value in self.mapping(node, "extra_sections").items():
            field = f"extra_sections.{name}"
            if isinstance(value, yaml.ScalarNode):
                sections[name] = [line for line in self.text(value, field).splitlines() if line.strip()]
            else:
                sections[name] = [
                    self.text(v, f"{field}[{i}]") for i, v in enumerate(self.sequence(value, field))
                ]
        return sections

    def scaffold(self, node: yaml.Node) -> dict[str, Any]:
        fields = self.mapping(node, "scaffold")
        return {key: self.value(value) for key, value in fields.items()}


def parse_criterion(text: str) -> Criterion:
    """'Given X, when Y, then Z' (any part optional); a sentence without the words is the 'then'."""
    clean = " ".join(text.replace("**", "").replace("__", "").split())
    marks = {}
    for word in CRITERION_FIELDS:
        match = re.search(rf"(?:^|[\s,;.]){word}\b", clean, re.IGNORECASE)
        if match:
            marks[word] = (match.start(), match.end())
    if not marks:
        return Criterion(then=clean)
    ordered = sorted(marks.items(), key=lambda kv: kv[1][0])
    parts: dict[str, str] = {}
    for i, (word, (_, end)) in enumerate(ordered):
        stop = ordered[i + 1][1][0] if i + 1 < len(ordered) else len(clean)
        parts[word] = clean[end:stop].strip(" ,;")
    lead = clean[: ordered[0][1][0]].strip(" ,;")
    if lead:
        parts["then"] = f"{lead} {parts.get('then', '')}".strip()
    return Criterion(**parts)


def _kind(node: Any) -> str:
    name = type(node).__name__
    return {"MappingNode": "a mapping", "SequenceNode": "a list", "ScalarNode": "a single value"}.get(
        name, name
    )


def dump_yaml(spec: TaskSpec) -> str:
    """The spec as YAML (TaskSpec.to_dict()), block style, multi-line text as literal blocks."""
    return _dump(spec.to_dict())


def dump_yaml_all(specs: list[TaskSpec]) -> str:
    """Several specs as one YAML stream, `---` between documents."""
    return "---\n".join(dump_yaml(spec) for spec in specs)


def _dump(data: Any) -> str:
    import yaml

    class SpecDumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    SpecDumper.add_representer(str, text)
    return yaml.dump(data, Dumper=SpecDumper, sort_keys=False, allow_unicode=True, width=100)
