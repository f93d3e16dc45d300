"""The project template: where it lives, the questions it asks, and proof that it runs no code.

The built-in template is `scaffolds/project/` (copier.yml + template/); tests and template
authors pass another folder of the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ccpt import __version__
from ccpt.errors import CcptError
from ccpt.resources import agent_specs_dir, scaffolds_dir

# copier.yml keys that would make rendering run code (or need --trust): refused outright.
UNSAFE_KEYS = ("_tasks", "_migrations", "_jinja_extensions")

SPEC_FILE = "specs/task.yaml"
AGENTS_DIR = ".claude/agents"


@dataclass(frozen=True)
class Question:
    """One copier question, as much of it as ccpt checks answers against."""

    name: str
    type: str = "str"
    help: str = ""
    choices: tuple[str, ...] = ()
    default: Any = None
    asked: bool = True  # False for `when: false` questions: computed, never prompted or recorded


@dataclass(frozen=True)
class ProjectTemplate:
    """A copier template folder plus the agent files and version that go with it."""

    root: Path
    questions: dict[str, Question]
    answers_file: str
    version: str
    agents_dir: Path | None

    @classmethod
    def load(
        cls, root: Path | None = None, *, version: str | None = None, agents_dir: Path | None = None
    ) -> ProjectTemplate:
        """Read the template at `root` (default: the built-in one) and check it runs no code."""
        root = (root or scaffolds_dir() / "project").resolve()
        config = _read_config(root)
        unsafe = [key for key in UNSAFE_KEYS if config.get(key)]
        if unsafe:
            raise CcptError(
                f"the template at {root} asks to run code ({', '.join(unsafe)}); ccpt runs no template code",
                hint="remove those keys from its copier.yml",
            )
        questions = {
            name: _question(name, details) for name, details in config.items() if not name.startswith("_")
        }
        if agents_dir is None:
            agents_dir = agent_specs_dir()
        return cls(
            root=root,
            questions=questions,
            answers_file=str(config.get("_answers_file") or ".copier-answers.yml"),
            version=version or __version__,
            agents_dir=agents_dir,
        )

    def choices_of(self, name: str) -> tuple[str, ...]:
        question = self.questions.get(name)
        return question.choices if question else ()


def _read_config(root: Path) -> dict[str, Any]:
    for name in ("copier.yml", "copier.yaml"):
        path = root / name
        if path.is_file():
            break
    else:
        raise CcptError(f"{root} is not a copier template (no copier.yml)")
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        raise CcptError(f"{path} is not valid YAML: {exc}".splitlines()[0]) from None
    config: dict[str, Any] = {}
    for document in documents:
        if not isinstance(document, dict):
            raise CcptError(f"{path} must be a mapping of questions and settings")
        config.update(document)
    return config


def _question(name: str, details: Any) -> Question:
    """A question from its copier.yml entry (a mapping, or a bare default value)."""
    if not isinstance(details, dict):
        return Question(name, type=type(details).__name__ if details is not None else "str", default=details)
    raw_choices = details.get("choices") or ()
    choices = tuple(
        str(choice) for choice in (raw_choices.values() if isinstance(raw_choices, dict) else raw_choices)
    )
    return Question(
        name=name,
        type=str(details.get("type", "str")),
        help=str(details.get("help", "")),
        choices=choices,
        default=details.get("default"),
        asked=details.get("when", True) is not False,
    )
