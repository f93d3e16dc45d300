"""`runner.py serve` as a user starts it: on the port asked for, on any free one with --port 0,
and with one line of advice when the port is taken."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from conftest import ROOT, run_cli


def test_a_busy_port_is_refused_in_one_line(trained_run: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--run", str(trained_run), "--port", str(port))
    assert result.returncode == 2, result.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "serving run" not in result.stdout


def test_port_zero_serves_on_a_free_port_and_says_which(trained_run: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    command = [sys.executable, "src/runner.py", "serve", "--run", str(trained_run), "--port", "0"]
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) as server:
        try:
            first_line = server.stdout.readline()
            url = first_line.split(" on ")[1].split()[0]
            assert not url.endswith(":0"), first_line
            with urllib.request.urlopen(f"{url}/health", timeout=30) as response:
                assert json.load(response)["run"] == trained_run.name
        finally:
            server.send_signal(signal.SIGINT)  # Ctrl-C
            assert server.wait(timeout=30) == 0
