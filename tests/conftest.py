"""Shared fixtures: every test runs with an isolated ccpt home and a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Under pytest-xdist (pyproject.toml runs a worker per core), each worker's torch, and torch in the
# processes it starts, uses one thread: as many threads as cores, not a worker's worth on each.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# Modules of long end-to-end tests (minutes each): spread over the workers one test at a time, and
# started first, the longest (those given an hour's timeout) first of all, so that no long test
# starts last on one worker while the others stand idle. Every other module's tests run together
# on one worker, so that its module-scoped fixtures (a trained project, a started server) are made
# once.
SPREAD_MODULES = {"test_project_demo", "test_project_suite"}

# Fixtures that start real local servers, one module per area.
pytest_plugins = ["tests.messages_api", "tests.web_support"]

# Variables that would make a test depend on the developer's own machine (or, COLUMNS and LINES, on
# pytest-xdist, whose workers get 80 x 24: ccpt's tables are as wide as COLUMNS says).
_LEAKY_ENV = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AWS_PROFILE", "CCPT_DEBUG", "COLUMNS", "LINES")


def deprecated_model() -> tuple[str, str]:
    """A model the installed anthropic SDK lists as deprecated, and its retirement date as the SDK
    writes it: taken from the SDK, since each release retires some models and drops others."""
    from anthropic._data import DEPRECATED_MODELS

    assert DEPRECATED_MODELS, "this anthropic SDK lists no deprecated model"
    return sorted(DEPRECATED_MODELS.items())[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_start_order)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's, absent with -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """xdist's load-scope scheduling with SPREAD_MODULES' tests each a scope of its own. (Not
    xdist_group marks: pytest 9.2 no longer reads the node ids that xdist 3.8 rewrites for them,
    which left every test a scope, and each module's fixtures made again on every worker.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.partition("::")[0]
            return nodeid if _module_stem(module) in SPREAD_MODULES else module

    return ModuleScheduling(config, log)


def _module_name(item: pytest.Item) -> str:
    return _module_stem(item.nodeid.partition("::")[0])


def _module_stem(path: str) -> str:
    """'tests/test_web_qa.py' -> 'test_web_qa'."""
    return path.rpartition("/")[2].removesuffix(".py")


def _start_order(item: pytest.Item) -> tuple[bool, float]:
    timeout = item.get_closest_marker("timeout")
    return _module_name(item) not in SPREAD_MODULES, -(timeout.args[0] if timeout else 0)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private CCPT_HOME and no inherited CCPT_*/ANTHROPIC_* settings for each test."""
    home = tmp_path_factory.mktemp("ccpt-home")
    for name in list(os.environ):
        if name.startswith("CCPT_") or name in _LEAKY_ENV:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CCPT_HOME", str(home))
    yield home


def run_ccpt(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the real `ccpt` entry point in a subprocess, as a user would."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ccpt", *args],
        cwd=cwd,
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
