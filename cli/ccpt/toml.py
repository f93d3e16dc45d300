"""TOML reading on every supported Python: `tomllib` from 3.11, its backport `tomli` on 3.10."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from tomllib import TOMLDecodeError, loads
else:  # pragma: no cover - exercised by the 3.10 install check, not the 3.11 test run
    from tomli import TOMLDecodeError, loads

__all__ = ["TOMLDecodeError", "loads"]
