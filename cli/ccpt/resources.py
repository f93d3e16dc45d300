"""Where the data that ships with ccpt lives: the scaffolds and the agent files.

In a wheel they are packaged as `ccpt/_data/{scaffolds,agent_specs}` and found through
`importlib.resources`; in an editable install (or a source checkout) they are the
top-level folders of the repository, two levels above this package.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ccpt.errors import CcptError


def data_dir(name: str) -> Path:
    """The shipped data folder `name` (`scaffolds` or `agent_specs`) as a real path."""
    packaged = Path(str(files("ccpt") / "_data" / name))
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / name
    if checkout.is_dir():
        return checkout
    raise CcptError(
        f"ccpt's `{name}` data folder is missing from this installation",
        hint="reinstall ccpt (pip install --force-reinstall ccpt)",
    )


def scaffolds_dir() -> Path:
    return data_dir("scaffolds")


def agent_specs_dir() -> Path:
    return data_dir("agent_specs")
