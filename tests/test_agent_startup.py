"""`ccpt agent list` and `ccpt agent --help` stay light: no SDK, no YAML, no pydantic loaded.

Speed itself is measured side by side in benchmarks/cli_startup.py; this pins down the cause
of a regression (a heavy import creeping into the path) so it fails loudly instead.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = {
    "anthropic",
    "torch",
    "boto3",
    "copier",
    "transformers",
    "datasets",
    "yaml",
    "pydantic",
    "httpx",
    "httpx2",
}
PROBE = """
import sys
from ccpt.app import app
try:
    app(sys.argv[1:], prog_name="ccpt")
except SystemExit:
    pass
print(sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[0].split(","))), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [("agent", "list"), ("agent", "--help"), ("agent", "list", "--json")])
def test_listing_the_roles_imports_nothing_heavy(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.replace("sys.argv[0]", repr(",".join(sorted(HEAVY)))), *args],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CCPT_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "NetworkArchitect" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "[]", result.stderr
