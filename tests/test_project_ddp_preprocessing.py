"""Under torchrun, the generated text project fits its tokenizer once (rank 0) and the other ranks
load it from the run: a tokenizer trained in each process can come out different in each
(huggingface/tokenizers#1794, ties broken in hash-map order), so ranks would feed the one model
differently numbered tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.project_support import new_project, run_in_project, run_records

pytestmark = pytest.mark.slow

# Runs the project's runner with text_encoding.train_wordpiece wrapped to leave a marker per rank
# that calls it.
COUNTING_RUNNER = """\
import os, runpy, sys
sys.path.insert(0, "src")
import text_encoding
trained_by = text_encoding.train_wordpiece
def train_wordpiece(*args, **kwargs):
    open(f"tokenizer-trained-by-rank-{os.environ['RANK']}", "w").close()
    return trained_by(*args, **kwargs)
text_encoding.train_wordpiece = train_wordpiece
sys.argv = ["src/runner.py", *sys.argv[1:]]
runpy.run_path("src/runner.py", run_name="__main__")
"""


def test_only_rank_zero_trains_the_tokenizer_and_every_rank_uses_it(tmp_path: Path) -> None:
    project = new_project(tmp_path, "tc", "text-classification")
    (project / "counting_runner.py").write_text(COUNTING_RUNNER)
    result = run_in_project(
        project,
        "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "counting_runner.py", "train", "--max-steps", "2", "--run-name", "ddp",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    markers = sorted(p.name for p in project.glob("tokenizer-trained-by-rank-*"))
    assert markers == ["tokenizer-trained-by-rank-0"]
    run = project / "runs" / "ddp"
    assert (run / "tokenizer").is_dir() and json.loads((run / "preprocessor.json").read_text())["labels"]
    assert run_records(run)[-1]["world_size"] == 2
