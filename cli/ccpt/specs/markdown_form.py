"""The Markdown form of task specs, as prompt libraries write them, read and written.

One spec looks like this (several may share a file, each under its own title heading):

    ## Image classification on digits
    **Task kind:** image-classification      (optional; otherwise guessed from the text)
    **Story Points:** 3
    **User Story:**
    As a ML engineer
    I want a small CNN that classifies 8x8 digits
    So that I can test the pipeline on a CPU
    **Prompt:**
    @agent-TestArchitect write the tests first, then ...
    ### CONSTRAINTS
    - Model size under 10MB
    ### REWARDS
    * Achieve >90% top-1 accuracy
    ### PENALTIES / ### GOAL STATE / ### ACCEPTANCE CRITERIA / ### PARAMETERS / ### SCAFFOLD

Sections may be headings of any level or bold/plain labels (`**Constraints:**`, `REWARDS:`), in
any case; bullets may be `*`, `-`, `+`, `•` or numbered. `[placeholders]` become open
parameters (PARAMETERS gives defaults as `- name: value`), `@agent-RoleName` in the prompt
records the lead role, and any other section is kept in `extra_sections`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccpt.specs.model import TASK_KINDS, CrpgItem, Story, TaskSpec
from ccpt.specs.placeholders import CRPG_SECTIONS, discover_parameters
from ccpt.specs.thresholds import explicit_threshold, extract_threshold
from ccpt.specs.yaml_form import SpecFileError, parse_criterion

_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
# `**Label:** rest`, `**Label**: rest`, or a bold line on its own (`**CONSTRAINTS**`).
_BOLD_LABEL = re.compile(
    r"^\s*(?:[*+-]\s+)?(?:\*\*|__)(?P<label>[^*_:]+?)\s*"
    r"(?::\s*(?:\*\*|__)\s*(?P<rest>.*)|(?:\*\*|__)\s*:\s*(?P<rest2>.*)|(?:\*\*|__)\s*)$"
)
_PLAIN_LABEL = re.compile(r"^\s*(?P<label>[A-Za-z][A-Za-z ]{1,30}?)\s*:\s*(?P<rest>.*)$")
_BULLET = re.compile(r"^(?P<indent>\s*)(?:[*+•-]|\d{1,3}[.)])\s+(?P<text>.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_EMPHASIS = re.compile(r"(?<![\w*_])[*_](\S(?:[^*_]*\S)?)[*_](?![\w*_])")
_ROLE = re.compile(r"@agent-(?P<role>[A-Za-z][A-Za-z0-9_-]*)")

# Section names as a reader meets them (normalised: lowercase letters and spaces) -> field.
_SECTIONS = {
    "user story": "story",
    "story": "story",
    "prompt": "prompt",
    "constraints": "constraints",
    "constraint": "constraints",
    "rewards": "rewards",
    "reward": "rewards",
    "penalties": "penalties",
    "penalty": "penalties",
    "goal state": "goal_state",
    "goal states": "goal_state",
    "goal": "goal_state",
    "goals": "goal_state",
    "acceptance criteria": "acceptance",
    "acceptance": "acceptance",
    "parameters": "parameters",
    "placeholders": "parameters",
    "scaffold": "scaffold",
}
# One-line fields: `**Story Points:** 5`.
_SCALARS = {
    "id": "id",
    "task": "task",
    "task kind": "task_kind",
    "kind": "task_kind",
    "story points": "points",
    "points": "points",
    "estimate": "points",
    "modality": "modality",
    "depends on": "depends_on",
    "dependencies": "depends_on",
    "lead role": "lead_role",
    "lead": "lead_role",
}
# Section names that plain `NAME:` lines (without bold or #) may use.
_PLAIN_SECTIONS = {
    "constraints",
    "rewards",
    "penalties",
    "goal state",
    "acceptance criteria",
    "user story",
    "prompt",
}

# Words that reveal a task kind when a spec does not name one; most specific first.
_KIND_HINTS: list[tuple[str, str]] = [
    (r"object detection|detector|bounding box|\byolo|\bdetr\b", "object-detection"),
    (r"segmentation|\bsegment", "semantic-segmentation"),
    (r"caption", "image-captioning"),
    (r"visual question|\bvqa\b", "visual-question-answering"),
    (
        r"document (?:understanding|ai|parsing)|layoutlm|invoice|receipt|\bforms?\b|\bocr\b",
        "document-understanding",
    ),
    (r"named entit|\bner\b|token classification|entity recognition", "token-classification"),
    (r"question answering|\bqa\b|squad", "question-answering"),
    (r"masked language|\bmlm\b|domain[- ]adaptive pre|continued pre", "masked-lm"),
    (r"(?:vision|image|vit|mae)\b.*pre-?train|pre-?train.*\b(?:vision|image|vit|mae)\b", "image-pretraining"),
    (r"image classif|classif\w* images|image classifier|\bcnn\b", "image-classification"),
    (r"text classif|sentiment|classif\w* (?:text|reviews|tickets|emails)|intent", "text-classification"),
    (r"language model|\bgpt|\bllm|text generation|instruction|\blora\b|\bchat|causal|\bllama", "causal-lm"),
]


def normalise_name(text: str) -> str:
    """'### 2. **Goal State:**' -> 'goal state': emphasis, numbering, symbols and case removed."""
    text = re.sub(r"[*_`]", "", text)
    text = re.sub(r"^\s*(?:\d+(?:\.\d+)*[.)]?|[ivx]+[.)])\s+", "", text, flags=re.IGNORECASE)
    text = re.sub(r"\(.*?\)", " ", text)
    text = re.sub(r"[^A-Za-z ]+", " ", text)
    return " ".join(text.lower().split())


def _section_of(name: str) -> str | None:
    norm = normalise_name(name)
    if norm in _SECTIONS:
        return _SECTIONS[norm]
    for key in ("constraints", "rewards", "penalties", "goal state", "acceptance criteria", "user story"):
        if norm.startswith(key + " "):
            return _SECTIONS[key]
    return None


def _clean(text: str) -> str:
    """Emphasis markers gone, whitespace collapsed: the text a bullet stands for."""
    text = text.replace("**", "").replace("__", "")
    text = _EMPHASIS.sub(r"\g<1>", text)  # *word* and _word_, but not train_val_gap
    return " ".join(text.split())


def slugify(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", normalise_title(title).lower()).strip("-")
    return slug or "spec"


def normalise_title(text: str) -> str:
    text = re.sub(r"[*_`]", "", text).strip().rstrip(":").strip()
    text = re.sub(r"^(?:\d+(?:\.\d+)*[.)]?)\s+", "", text)
    text = re.sub(r"^[^\w\[(]+", "", text)  # leading emoji or symbols
    return " ".join(text.split())


@dataclass
class _Line:
    number: int
    raw: str
    heading: tuple[int, str] | None = None  # (level, text)
    label: tuple[str, str] | None = None  # (label, rest of the line)


@dataclass
class _Draft:
    """What one spec's lines add up to before it becomes a TaskSpec."""

    title: str
    start: int
    fields: dict[str, tuple[int, str]] = field(default_factory=dict)
    story: list[str] = field(default_factory=list)
    prompt: list[str] = field(default_factory=list)
    lists: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    extra: dict[str, list[str]] = field(default_factory=dict)


def parse_markdown_specs(text: str, source: str = "<spec>") -> list[TaskSpec]:
    """Every spec in a Markdown text, in file order."""
    lines = _classify(text.lstrip("\ufeff").splitlines())
    blocks = _spec_blocks(lines)
    if not blocks:
        raise SpecFileError(
            source,
            None,
            None,
            "holds no task spec: expected a '**User Story:**' line and CONSTRAINTS, REWARDS, "
            "PENALTIES or GOAL STATE sections",
        )
    stem = Path(source).stem if source and not source.startswith("<") else "spec"
    specs: list[TaskSpec] = []
    for title, start, level, block in blocks:
        draft = _read_block(title or stem.replace("-", " ").replace("_", " "), start, level, block)
        spec = _build(draft, source)
        ids = {s.id for s in specs}
        base, n = spec.id, 2
        while spec.id in ids:
            spec.id, n = f"{base}-{n}", n + 1
        specs.append(spec)
    return specs


def _classify(raw_lines: list[str]) -> list[_Line]:
    lines: list[_Line] = []
    in_fence = False
    for number, raw in enumerate(raw_lines, start=1):
        line = _Line(number, raw.rstrip())
        if _FENCE.match(raw):
            in_fence = not in_fence
            line.raw = ""  # fences only wrap text; their content is read as plain lines
        elif not in_fence:
            heading = _HEADING.match(raw)
            if heading:
                line.heading = (len(heading.group(1)), heading.group(2))
            else:
                label = _BOLD_LABEL.match(raw)
                bullet = _BULLET.match(raw)
                if label and (not bullet or _is_known_name(label["label"])):
                    # "- **Accuracy:** 90%" is a list item; "- **Prompt:** ..." still a label.
                    rest = label["rest"] if label["rest"] is not None else label["rest2"] or ""
                    line.label = (label["label"].strip(), rest.strip())
                else:
                    plain = _PLAIN_LABEL.match(raw)
                    if plain and normalise_name(plain["label"]) in _PLAIN_SECTIONS:
                        line.label = (plain["label"].strip(), plain["rest"].strip())
        lines.append(line)
    return lines


def _name(line: _Line) -> str | None:
    """The heading text or label of a line, None for plain text."""
    if line.heading:
        return line.heading[1]
    return line.label[0] if line.label else None


def _is_story_marker(line: _Line) -> bool:
    name = _name(line)
    return name is not None and _section_of(name) == "story"


def _is_known(line: _Line) -> bool:
    return _is_known_name(_name(line) or "")


def _is_known_name(name: str) -> bool:
    return _section_of(name) is not None or normalise_name(name) in _SCALARS


def _spec_blocks(lines: list[_Line]) -> list[tuple[str, int, int, list[_Line]]]:
    """(title, first line number, title heading level, lines) for each spec in the file.

    A spec's title heading is the nearest heading before its User Story marker that is not a
    section name; the spec runs to the next title heading or a heading at the title's level or
    above. A file without User Story markers but with CRPG sections is one spec.
    """
    titles: list[int] = []
    for i, line in enumerate(lines):
        if not _is_story_marker(line):
            continue
        for j in range(i - 1, -1, -1):
            if lines[j].heading and not _is_known(lines[j]):
                if j not in titles:
                    titles.append(j)
                break
        else:
            if -1 not in titles:
                titles.append(-1)
    if not titles:
        if not any(_section_of(_name(line) or "") for line in lines):
            return []
        first = next((i for i, line in enumerate(lines) if line.heading and not _is_known(line)), -1)
        titles = [first]
    titles.sort()
    blocks = []
    for k, index in enumerate(titles):
        heading = lines[index].heading if index >= 0 else None
        level, title = heading if heading else (0, "")
        stop = titles[k + 1] if k + 1 < len(titles) else len(lines)
        body: list[_Line] = []
        for line in lines[index + 1 : stop]:
            if line.heading and level and line.heading[0] <= level and not _is_known(line):
                break
            body.append(line)
        start = lines[index].number if index >= 0 else 1
        blocks.append((normalise_title(title), start, level, body))
    return blocks


def _read_block(title: str, start: int, level: int, lines: list[_Line]) -> _Draft:
    draft = _Draft(title=title, start=start)
    section = "intro"
    for line in lines:
        name = _name(line)
        if name is not None and section == "prompt" and line.label and not _is_known(line):
            name = None  # "**Important:** ..." inside a prompt is prompt text
        if name is not None:
            norm = normalise_name(name)
            known = _section_of(name)
            rest = line.label[1] if line.label else ""
            if norm in _SCALARS and line.label and rest:
                draft.fields[_SCALARS[norm]] = (line.number, rest)
                continue
            if norm in _SCALARS and line.label:
                draft.fields[_SCALARS[norm]] = (line.number, "")
                continue
            if known:
                section = known
                if rest:
                    _add_line(draft, section, line.number, rest)
                continue
            if line.heading or not rest:
                section = "extra:" + normalise_title(name)
                draft.extra.setdefault(section[6:], [])
                continue
            draft.extra.setdefault(normalise_title(name), []).append(_clean(rest))
            continue
        _add_line(draft, section, line.number, line.raw)
    return draft


def _add_line(draft: _Draft, section: str, number: int, raw: str) -> None:
    if section == "prompt":
        draft.prompt.append(raw.rstrip())
        return
    if not raw.strip():
        if draft.lists.get(section):
            draft.lists[section].append((number, ""))  # a blank line ends a bullet's continuation
        return
    if section == "story":
        draft.story.append(raw)
        return
    if section == "intro":
        draft.extra.setdefault("Introduction", []).append(_clean(raw))
        return
    if section.startswith("extra:"):
        bullet = _BULLET.match(raw)
        draft.extra.setdefault(section[6:], []).append(_clean(bullet["text"] if bullet else raw))
        return
    draft.lists.setdefault(section, []).append((number, raw))


def _bullets(entries: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Bullet items with their continuation lines; 'Parent:' bullets prefix their children."""
    items: list[tuple[int, str, int]] = []  # (line, text, indent)
    last_blank = False
    for number, raw in entries:
        if not raw:
            last_blank = True
            continue
        bullet = _BULLET.match(raw)
        if bullet:
            items.append((number, bullet["text"], len(bullet["indent"].expandtabs(4))))
        elif items and not last_blank:
            n, text, indent = items[-1]
            items[-1] = (n, f"{text} {raw.strip()}", indent)
        else:
            items.append((number, raw.strip(), 0))
        last_blank = False
    result: list[tuple[int, str]] = []
    parents: list[tuple[int, str]] = []  # (indent, text) of open 'Parent:' bullets
    for i, (number, text, indent) in enumerate(items):
        text = _clean(text)
        while parents and parents[-1][0] >= indent:
            parents.pop()
        has_children = i + 1 < len(items) and items[i + 1][2] > indent
        if text.endswith(":") and has_children:
            parents.append((indent, text[:-1].strip()))
            continue
        prefix = ": ".join(p[1] for p in parents)
        result.append((number, f"{prefix}: {text}" if prefix else text))
    return result


def _build(draft: _Draft, source: str) -> TaskSpec:
    fields = draft.fields
    spec = TaskSpec(id="", title=draft.title, task_kind="")
    spec.story = _parse_story(" ".join(_clean(_BULLET.sub(r"\g<text>", s)) for s in draft.story))
    spec.prompt = _join_prompt(draft.prompt)
    for section in CRPG_SECTIONS:
        items = []
        for _, text in _bullets(draft.lists.get(section, [])):
            text, pinned = explicit_threshold(text)
            items.append(CrpgItem(text, pinned or extract_threshold(text, section)))
        setattr(spec, section, items)
    spec.acceptance = [parse_criterion(text) for _, text in _bullets(draft.lists.get("acceptance", []))]
    spec.parameters = _pairs(draft.lists.get("parameters", []), source, "parameters", as_text=True)
    spec.scaffold = _pairs(draft.lists.get("scaffold", []), source, "scaffold", as_text=False)
    spec.extra_sections = {name: lines for name, lines in draft.extra.items() if lines}

    spec_id = fields.get("id", (0, ""))[1].strip() or slugify(draft.title)
    spec.id = spec_id.lower()
    if not re.match(r"^[a-z0-9][a-z0-9._-]*$", spec.id):
        raise SpecFileError(
            source, fields["id"][0], "id", f"'{spec_id}' must be lowercase letters, digits, '-', '_' or '.'"
        )
    if "task" in fields:
        number, text = fields["task"]
        if text.strip().strip("`").lower() in TASK_KINDS and "task_kind" not in fields:
            fields["task_kind"] = (number, text)
        elif text.strip():
            spec.extra_sections = {"Task": [_clean(text)], **spec.extra_sections}
    if "task_kind" in fields:
        number, kind = fields["task_kind"]
        kind = kind.strip().strip("`").lower()
        if kind and kind not in TASK_KINDS:
            raise SpecFileError(
                source, number, "task kind", f"'{kind}' is not one of {', '.join(TASK_KINDS)}"
            )
        spec.task_kind = kind
    else:
        words = [spec.title, spec.story.i_want, *spec.extra_sections.get("Task", []), spec.prompt]
        spec.task_kind = guess_task_kind(" ".join(words))
    if "points" in fields:
        spec.points = _points(fields["points"], source)
    spec.modality = fields.get("modality", (0, ""))[1].strip()
    if "depends_on" in fields:
        value = fields["depends_on"][1].strip()
        spec.depends_on = (
            []
            if value.lower() in {"", "none", "-", "n/a"}
            else [d.strip() for d in value.split(",") if d.strip()]
        )
    if "lead_role" in fields:
        spec.lead_role = fields["lead_role"][1].strip().removeprefix("@agent-") or None
    else:
        role = _ROLE.search(spec.prompt)
        spec.lead_role = role["role"] if role else None
    return discover_parameters(spec)


def guess_task_kind(text: str) -> str:
    """The task kind a spec's words point to, or '' when they point to none."""
    lowered = text.lower()
    for pattern, kind in _KIND_HINTS:
        if re.search(pattern, lowered):
            return kind
    return ""


def _points(entry: tuple[int, str], source: str) -> int | None:
    number, value = entry
    value = value.strip()
    if value.lower() in {"", "?", "tbd", "n/a", "none", "-"}:
        return None
    match = re.match(r"^(\d+)\b", value)
    if not match:
        raise SpecFileError(
            source, number, "story points", f"'{value}' is not a whole number (write e.g. 3, or TBD)"
        )
    return int(match.group(1))


def _pairs(entries: list[tuple[int, str]], source: str, section: str, as_text: bool) -> dict[str, Any]:
    """`- name: value` bullets (PARAMETERS, SCAFFOLD) as a mapping."""
    result: dict[str, Any] = {}
    for number, text in _bullets(entries):
        name, sep, value = text.partition(":")
        if not sep:
            name, sep, value = text.partition("=")
        name = name.strip().strip("[]").strip()
        if not name:
            raise SpecFileError(source, number, section, f"'{text}' is not 'name: value'")
        value = value.strip()
        result[name] = (value or None) if as_text else _scalar(value)
    return result


def _scalar(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        return text


def _parse_story(text: str) -> Story:
    """'As a X, I want Y, so that Z' on one line or three; any part may be missing."""
    marks = [
        ("as_a", re.search(r"\bas an?\b", text, re.IGNORECASE)),
        ("i_want", re.search(r"\bI (?:want|need|would like|'d like)\b", text, re.IGNORECASE)),
        ("so_that", re.search(r"\bso that\b", text, re.IGNORECASE)),
    ]
    found = sorted(((name, m) for name, m in marks if m), key=lambda nm: nm[1].start())
    parts: dict[str, str] = {}
    for i, (name, match) in enumerate(found):
        stop = found[i + 1][1].start() if i + 1 < len(found) else len(text)
        parts[name] = text[match.end() : stop].strip().strip(",;").strip()
        if name == "so_that":
            parts[name] = parts[name].rstrip(".").strip()
    if not found and text.strip():
        parts["i_want"] = text.strip()
    return Story(**parts)


def _join_prompt(lines: list[str]) -> str:
    text = "\n".join(lines).strip("\n")
    text = re.sub(r"\n{3,}", "\n\n", text)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()


def dump_markdown(specs: list[TaskSpec]) -> str:
    """Specs in the Markdown form this module reads (each under a `#` title heading)."""
    return "\n".join(_spec_markdown(spec) for spec in specs)


def _spec_markdown(spec: TaskSpec) -> str:
    out = [f"# {spec.title}", ""]
    out.append(f"**ID:** {spec.id}")
    out.append(f"**Task kind:** {spec.task_kind}")
    if spec.modality:
        out.append(f"**Modality:** {spec.modality}")
    if spec.points is not None:
        out.append(f"**Story Points:** {spec.points}")
    if spec.depends_on:
        out.append(f"**Depends on:** {', '.join(spec.depends_on)}")
    role = _ROLE.search(spec.prompt)
    if spec.lead_role != (role["role"] if role else None):
        out.append(f"**Lead role:** {spec.lead_role or ''}")
    if spec.story.lines():
        out += ["", "**User Story:**", *spec.story.lines()]
    if spec.prompt:
        out += ["", "**Prompt:**", spec.prompt]
    if spec.acceptance:
        out += ["", "## ACCEPTANCE CRITERIA", ""]
        out += [f"- {c.sentence()}" for c in spec.acceptance]
    headings = ("CONSTRAINTS", "REWARDS", "PENALTIES", "GOAL STATE")
    for section, heading in zip(CRPG_SECTIONS, headings, strict=True):
        items: list[CrpgItem] = getattr(spec, section)
        if items:
            out += ["", f"## {heading}", ""]
            out += [f"- {_item(item, section)}" for item in items]
    if spec.parameters:
        out += ["", "## PARAMETERS", ""]
        out += [f"- {name}: {value or ''}".rstrip() for name, value in spec.parameters.items()]
    if spec.scaffold:
        out += ["", "## SCAFFOLD", ""]
        out += [f"- {key}: {_scalar_text(value)}" for key, value in spec.scaffold.items()]
    for name, lines in spec.extra_sections.items():
        out += ["", f"## {name}", ""]
        out += [f"- {line}" for line in lines]
    return "\n".join(out) + "\n"


def _item(item: CrpgItem, section: str) -> str:
    if item.threshold == extract_threshold(item.text, section):
        return item.text
    if item.threshold is None:
        return item.text  # a threshold cannot be removed in Markdown; the text's own is kept
    pinned = item.threshold
    return f"{item.text} {{{pinned.metric} {pinned.op} {pinned.value!r}}}"


def _scalar_text(value: Any) -> str:
    if isinstance(value, str) and value and _scalar(value) == value:
        return value
    return json.dumps(value)
