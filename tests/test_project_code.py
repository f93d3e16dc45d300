"""The code `ccpt new` renders for each task kind: only that kind's modules, clean, runnable as is.

(The generated project's own test suite, its training and its acceptance gates run in
test_project_suite.py and test_project_demo.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.project_support import PROJECT_KINDS, new_project, run_in_project

MODULES = {"acceptance", "compute", "config", "data", "loading", "metrics", "network", "predictor", "runner"}
MODULES |= {"server", "trainer"}
# A line of code only that kind's modules contain.
KIND_MARKERS = {
    "image-classification": "def digits_dataset(",
    "text-classification": "def stdlib_docstrings(",
    "token-classification": "def clinical_notes(",
    "question-answering": "def product_manuals(",
    "semantic-segmentation": "def aerial_scene(",
    "object-detection": "def warehouse_frame(",
    "image-captioning": "def product_photo(",
    "visual-question-answering": "def bar_chart(",
    "image-pretraining": "class MaskedAutoencoder(nn.Module):",
    "masked-lm": "class MaskedLanguageModel(nn.Module):",
    "document-understanding": "class LayoutTagger(nn.Module):",
    "causal-lm": "class GPT(nn.Module):",
}


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    parent = tmp_path_factory.mktemp("projects")
    # Long names: a project name must never push a generated line past the linter's limit.
    names = {kind: f"{kind}-model-of-the-team-with-a-long-name" for kind in PROJECT_KINDS}
    return {kind: new_project(parent, name, kind) for kind, name in names.items()}


@pytest.mark.parametrize("kind", PROJECT_KINDS)
def test_each_project_holds_only_the_code_of_its_own_task_kind(projects: dict[str, Path], kind: str) -> None:
    src = projects[kind] / "src"
    assert {path.stem for path in src.glob("*.py")} >= MODULES
    code = "\n".join(path.read_text() for path in sorted(src.glob("*.py")))
    for other, marker in KIND_MARKERS.items():
        assert (marker in code) == (other == kind), (other, marker)
    config = (src / "config.py").read_text()
    assert f'TASK_KIND = "{kind}"' in config


@pytest.mark.parametrize("kind", PROJECT_KINDS)
def test_rendered_python_is_ruff_clean_with_no_template_syntax_left(
    projects: dict[str, Path], kind: str
) -> None:
    project = projects[kind]
    for path in [*project.glob("src/*.py"), *project.glob("tests/*.py")]:
        text = path.read_text()
        assert "{%" not in text and "{{" not in text.replace("{{!", ""), path
        compile(text, str(path), "exec")
    lint = run_in_project(project, "-m", "ruff", "check", "src", "tests")
    assert lint.returncode == 0, lint.stdout
    layout = run_in_project(project, "-m", "ruff", "format", "--check", "src", "tests")
    assert layout.returncode == 0, layout.stdout


@pytest.mark.parametrize("kind", PROJECT_KINDS)
def test_runner_help_lists_every_command(projects: dict[str, Path], kind: str) -> None:
    result = run_in_project(projects[kind], "src/runner.py", "--help")
    assert result.returncode == 0, result.stderr
    for command in ("train", "evaluate", "predict", "serve", "check"):
        assert command in result.stdout


def test_pyproject_names_dependencies_dev_tools_and_the_train_entry(projects: dict[str, Path]) -> None:
    pyproject = (projects["causal-lm"] / "pyproject.toml").read_text()
    requirements = ("torch", "transformers", "datasets", "tokenizers", "scikit-learn", "fastapi", "uvicorn")
    assert all(f'"{requirement}>=' in pyproject for requirement in requirements)
    dev = pyproject.split("dev = [", 1)[1].split("]", 1)[0]
    assert all(f'"{tool}>=' in dev for tool in ("pytest", "httpx", "ruff"))
    assert 'train_entry = "src/runner.py train"' in pyproject
    assert 'pythonpath = ["src"]' in pyproject


def test_template_answers_become_the_projects_defaults(tmp_path: Path) -> None:
    answers = ["precision=bf16", "distributed=none", "dataset=/data/reviews.csv"]
    project = new_project(tmp_path, "reviews", "text-classification", *[f"--data={a}" for a in answers])
    code = "import config as c; s = c.Config(); print(s.precision, s.distributed, s.dataset, c.PROJECT_NAME)"
    result = run_in_project(project / "src", "-c", code)
    assert result.stdout.split() == ["bf16", "none", "/data/reviews.csv", "reviews"]


def test_an_unknown_setting_is_refused_in_one_line(projects: dict[str, Path]) -> None:
    result = run_in_project(projects["image-classification"], "src/runner.py", "train", "--set", "speed=11")
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown setting 'speed'") and result.stderr.count("\n") == 1
    assert not (projects["image-classification"] / "runs").exists()


@pytest.mark.parametrize(
    ("kind", "setting", "allowed"),
    [
        ("image-classification", "batch_size=0", "[1, inf)"),
        ("text-classification", "log_every=0", "[1, inf)"),
        ("causal-lm", "lr=nan", "[0, inf)"),
        ("causal-lm", "dropout=1.5", "[0, 1)"),
        ("causal-lm", "val_fraction=0", "(0, 1)"),
    ],
)
def test_a_setting_out_of_range_is_refused_in_one_line(
    projects: dict[str, Path], kind: str, setting: str, allowed: str
) -> None:
    result = run_in_project(projects[kind], "src/runner.py", "train", "--set", setting)
    assert result.returncode == 2
    name = setting.split("=")[0]
    assert result.stderr.startswith(f"error: {name}=") and result.stderr.count("\n") == 1
    assert f"is out of range: it takes a number in {allowed}" in result.stderr


WIDTH_KINDS = [
    "text-classification",
    "image-captioning",
    "visual-question-answering",
    "image-pretraining",
    "masked-lm",
    "document-understanding",
    "causal-lm",
]


@pytest.mark.parametrize("kind", WIDTH_KINDS)
def test_a_width_that_heads_cannot_share_is_refused_in_one_line(projects: dict[str, Path], kind: str) -> None:
    shape = ["--set", "n_embd=128", "--set", "n_head=3"]
    result = run_in_project(projects[kind], "src/runner.py", "train", *shape)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: n_embd=128 is not a multiple of n_head=3")


def test_check_before_any_training_says_what_to_do(projects: dict[str, Path]) -> None:
    result = run_in_project(projects["causal-lm"], "src/runner.py", "check")
    assert result.returncode == 2 and "train one first: python src/runner.py train" in result.stderr
