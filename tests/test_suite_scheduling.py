"""The suite's own scheduling under pytest-xdist (tests/conftest.py): each module's tests run on one
worker, so that its module-scoped fixtures (a trained project, a started server) are made once."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_each_module_runs_on_one_worker(tmp_path: Path) -> None:
    # Modules of pure functions: their results do not depend on the terminal or the temporary paths.
    modules = ["tests/test_spec_yaml.py", "tests/test_spec_thresholds.py", "tests/test_train_hostfile.py"]
    options = ["-n", "2", "-v", "-p", "no:cacheprovider", f"--basetemp={tmp_path}"]
    argv = [sys.executable, "-m", "pytest", *options, *modules]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    workers: dict[str, set[str]] = defaultdict(set)
    for worker, module in re.findall(r"\[(gw\d+)\] \[ *\d+%\] PASSED (tests/\w+\.py)::", result.stdout):
        workers[module].add(worker)
    assert set(workers) == set(modules), result.stdout[-3000:]
    assert all(len(ran_on) == 1 for ran_on in workers.values()), dict(workers)
    assert len(set().union(*workers.values())) == 2  # and the modules are spread over both workers
