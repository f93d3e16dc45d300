"""What a text-classification project's exported program costs a service per text: the program
that takes any length up to max_length (fed by its tokenizer, which pads a batch to its longest
text) against one fixed at max_length (every text padded to it, as the export was before), side
by side on the project's validation texts.

Both programs come from the same trained run; each round times the two in turn (A B A B ...) over
the same batches, so machine noise hits both alike. With no --project, a text-classification
project is rendered into a temporary folder and trained for 30 steps first.

    python benchmarks/exported_text_length.py [--project DIR | --set n_layer=2 ...] [--batches 1 32]
        [--runs 7] [--json]
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

from new_vs_copier import timed as run  # this folder is on sys.path when a benchmark runs

REPO = Path(__file__).resolve().parent.parent


def render_and_train(folder: Path, settings: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "cli")}
    new = [sys.executable, "-m", "ccpt", "new", str(folder), "--spec", "text-classification", "--defaults"]
    run([*new, "--no-git"], REPO, env)
    train = [sys.executable, "src/runner.py", "train", "--max-steps", "30", "--run", "bench"]
    run([*train, *(part for setting in settings for part in ("--set", setting))], folder, env)


def programs(project: Path, scratch: Path) -> dict:
    """The run's program as `runner.py export` writes it, one fixed at max_length, the tokenizer
    it carries and the validation texts."""
    import torch
    from tokenizers import Tokenizer

    sys.path.insert(0, str(project / "src"))
    from predictor import Predictor  # the project's own modules
    from programs import Probabilities, save_program
    from text_encoding import TOKENIZER_FILE

    exported = subprocess.run(
        [sys.executable, "src/runner.py", "export", "--output", str(scratch / "any.pt2"), "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    files = {TOKENIZER_FILE: ""}
    any_length = torch.export.load(json.loads(exported.stdout)["path"], extra_files=files).module()
    predictor = Predictor(sorted(path for path in (project / "runs").iterdir() if path.is_dir())[-1], "cpu")
    prepare = predictor.preprocessor
    fixed_path = scratch / "fixed.pt2"
    classifier = Probabilities(predictor.model.to("cpu"), dim=-1).eval()
    save_program(classifier, prepare.encode(["an example text", "another one"]), fixed_path)
    return {
        "any_length": any_length,
        "fixed": torch.export.load(fixed_path).module(),
        "tokenizer": Tokenizer.from_str(files[TOKENIZER_FILE]),
        "encode_fixed": prepare.encode,
        "texts": predictor.sample_inputs(256),
        "max_length": prepare.max_length,
    }


def per_text_ms(program, batches: list) -> float:
    import torch

    texts = sum(len(ids) for ids in batches)
    with torch.no_grad():
        start = time.perf_counter()
        for ids in batches:
            program(ids)
        return (time.perf_counter() - start) * 1000 / texts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", type=Path, help="a trained text-classification project")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32], help="texts per call")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a setting of the run trained here"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import torch

    rows = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        project = args.project
        if project is None:
            project = scratch / "project"
            render_and_train(project, args.set)
        found = programs(project.resolve(), scratch)
        texts, tokenizer = found["texts"], found["tokenizer"]
        lengths = [len(tokenizer.encode(text).ids) for text in texts]
        for size in args.batches:
            groups = [texts[i : i + size] for i in range(0, len(texts), size)]
            any_batches = [torch.tensor([e.ids for e in tokenizer.encode_batch(group)]) for group in groups]
            fixed_batches = [found["encode_fixed"](group) for group in groups]
            times: dict[str, list[float]] = {"fixed": [], "any_length": []}
            for round_ in range(args.runs + 1):  # the first round warms both up and is not counted
                for name, batches in (("fixed", fixed_batches), ("any_length", any_batches)):
                    measured = per_text_ms(found[name], batches)
                    if round_:
                        times[name].append(measured)
            fixed, any_length = (statistics.median(times[name]) for name in ("fixed", "any_length"))
            rows.append(
                {
                    "batch": size,
                    "fixed_ms_per_text": round(fixed, 4),
                    "any_length_ms_per_text": round(any_length, 4),
                    "ratio": round(any_length / fixed, 3),
                    "mean_tokens": round(statistics.mean(lengths), 1),
                    "max_length": found["max_length"],
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| texts a call | fixed at max_length, ms a text | any length, ms a text | any / fixed |")
    print("|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['batch']} | {row['fixed_ms_per_text']:.3f} | {row['any_length_ms_per_text']:.3f}"
            f" | {row['ratio']:.2f}x |"
        )
    print(f"validation texts: {rows[0]['mean_tokens']} tokens on average, max_length {rows[0]['max_length']}")


if __name__ == "__main__":
    main()
