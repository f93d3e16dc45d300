"""Time ccpt adds before a consultation's request leaves, over the bare SDK call.

Both sides send the same request (the exact body `ccpt agent ... --dry-run` prints) to a local
Messages API server, which stamps the moment each request arrives (`time.monotonic`, one clock
for every process on the machine). Two measurements, alternated A B A B ..., medians:

- cold: a fresh process each time, from launch to the request's arrival. The bare side is a
  ten-line script that imports `anthropic` and streams the request; the ccpt side is the real
  `ccpt agent NetworkArchitect "..."` command (roster, prompt, settings, history setup).
- warm: in one process with everything imported, from the call to the request's arrival:
  a new `anthropic.Anthropic()` and `client.messages.stream(...)` against ccpt's
  `prepare_consultation` + `run_consultation` (which also makes its client).

    python benchmarks/agent_overhead.py [--runs 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.messages_api import FAKE_API_KEY, MessagesApiServer  # noqa: E402

QUESTION = "Fused QKV or separate projections for a 12-layer ViT?"
BARE_SCRIPT = """
import json, sys
import anthropic
body = json.load(open(sys.argv[1]))
body.pop("stream")
client = anthropic.Anthropic()
with client.messages.stream(**body) as stream:
    for _ in stream:
        pass
"""


def arrival_after(server: MessagesApiServer, count_before: int) -> float:
    request = server.message_requests()[count_before]
    return request.started


def cold_run(server: MessagesApiServer, argv: list[str], env: dict[str, str]) -> float:
    """Seconds from launching `argv` to its request reaching the server."""
    before = len(server.message_requests())
    start = time.monotonic()
    subprocess.run(
        argv,
        env=env,
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return arrival_after(server, before) - start


def warm_bare(server: MessagesApiServer, params: dict[str, Any]) -> float:
    import anthropic

    before = len(server.message_requests())
    start = time.monotonic()
    client = anthropic.Anthropic(api_key=FAKE_API_KEY, base_url=server.url)  # a CLI makes one per call
    with client.messages.stream(**params) as stream:
        for _ in stream:
            pass
    return arrival_after(server, before) - start


def warm_ccpt(server: MessagesApiServer, settings: Any, roster: Any) -> float:
    from ccpt.agents.consult import prepare_consultation, run_consultation

    before = len(server.message_requests())
    start = time.monotonic()
    consultation = prepare_consultation(roster, "NetworkArchitect", QUESTION, settings)
    for _ in run_consultation(consultation, settings, log=True):
        pass
    return arrival_after(server, before) - start


def warm_pair(
    server: MessagesApiServer, body: dict[str, Any], settings: Any, roster: Any, ccpt_first: bool = False
) -> tuple[float, float]:
    """(bare SDK, ccpt) seconds from the call to the request's arrival, in this process."""
    params = {key: value for key, value in body.items() if key != "stream"}
    if ccpt_first:
        ours = warm_ccpt(server, settings, roster)
        return warm_bare(server, params), ours
    bare = warm_bare(server, params)
    return bare, warm_ccpt(server, settings, roster)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    server = MessagesApiServer().start()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "ANTHROPIC_BASE_URL": server.url,
            "ANTHROPIC_API_KEY": FAKE_API_KEY,
            "CCPT_HOME": tmp,
            "HOME": tmp,
        }
        ccpt = [str(Path(sys.executable).with_name("ccpt")), "agent", "NetworkArchitect", QUESTION]
        dry = subprocess.run(
            [*ccpt, "--dry-run"], env=env, capture_output=True, text=True, check=True, cwd=tmp
        )
        body = json.loads(dry.stdout)["body"]
        body_file = Path(tmp) / "body.json"
        body_file.write_text(json.dumps(body))
        bare = [sys.executable, "-c", BARE_SCRIPT, str(body_file)]

        cold_run(server, bare, env), cold_run(server, ccpt, env)  # warm the page cache and .pyc files
        cold: dict[str, list[float]] = {"bare": [], "ccpt": []}
        for run in range(args.runs):  # A B, then B A: neither side always goes first
            for name in ("bare", "ccpt") if run % 2 == 0 else ("ccpt", "bare"):
                cold[name].append(cold_run(server, bare if name == "bare" else ccpt, env))

        os.environ.update(
            CCPT_HOME=tmp, HOME=tmp, ANTHROPIC_BASE_URL=server.url, ANTHROPIC_API_KEY=FAKE_API_KEY
        )
        from ccpt.agents.roster import load_roster
        from ccpt.config import resolve_settings

        settings, roster = resolve_settings(cwd=Path(tmp)), load_roster(cwd=Path(tmp))
        warm_pair(server, body, settings, roster)
        warm: dict[str, list[float]] = {"bare": [], "ccpt": []}
        for run in range(args.runs):
            bare_s, ours_s = warm_pair(server, body, settings, roster, ccpt_first=run % 2 == 1)
            warm["bare"].append(bare_s)
            warm["ccpt"].append(ours_s)
    server.stop()

    rows = []
    for name, samples in (("cold process", cold), ("warm, in-process", warm)):
        bare_s, ours_s = statistics.median(samples["bare"]), statistics.median(samples["ccpt"])
        rows.append(
            {
                "measure": name,
                "bare_sdk_ms": round(bare_s * 1000, 1),
                "ccpt_ms": round(ours_s * 1000, 1),
                "added_ms": round((ours_s - bare_s) * 1000, 1),
                "ratio": round(ours_s / bare_s, 2),
            }
        )
    if args.json:
        print(json.dumps({"runs": args.runs, "results": rows}, indent=2))
        return
    print(f"time to the request leaving (median of {args.runs}, alternated)")
    print(f"{'measure':<18} {'bare SDK ms':>12} {'ccpt ms':>9} {'added ms':>9} {'ratio':>6}")
    for row in rows:
        print(
            f"{row['measure']:<18} {row['bare_sdk_ms']:>12.1f} {row['ccpt_ms']:>9.1f}"
            f" {row['added_ms']:>9.1f} {row['ratio']:>6.2f}"
        )


if __name__ == "__main__":
    main()
