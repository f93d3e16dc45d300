"""Sampling speed of the generated causal-LM project's GPT: with its key-value cache, and without.

A project is rendered with `ccpt new --spec causal-lm` (or taken from --project). Its GPT is
built at each shape below (random weights: speed does not depend on them), and `network.generate`
samples greedily from a prompt of half a block, first with the cache (each token one position's
forward pass), then by running the last block_size tokens again for every token (as the project
did before it had a cache), alternating A B A B ... and taking medians. Tokens per second is
new tokens over wall time, the prompt's own pass included.

With --lora RANK it compares, with the cache, a LoRA model (adapters of that rank beside every
attention and MLP matmul, their B drawn non-zero as after training) against the same model with
its adapters merged into the frozen weights (`network.merge_lora`, what the project's predictor
serves), and checks that both sample the same tokens.

With --against-hf it compares the project's cached generation with transformers' own `generate`
(its KV cache, greedy) on the same weights: the GPT written as a `GPT2LMHeadModel` by the
project's `export.gpt2_of` (what `runner.py export` saves), and checks that both sample the same
tokens.

    python benchmarks/generation_speed.py [--project DIR] [--tokens 64] [--runs 3] [--device cuda] [--json]
    python benchmarks/generation_speed.py --lora 8 --shapes tiny small
    python benchmarks/generation_speed.py --against-hf --shapes tiny small gpt2-124m
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

SHAPES = {  # the project's presets (config.PRESETS): layers, heads, width, context
    "tiny": {"n_layer": 2, "n_head": 4, "n_embd": 128, "block_size": 128},
    "small": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256},
    "gpt2-124m": {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024},
}
VOCAB = 8192  # the project's default BPE vocabulary


def greedy(
    network, model, prompt: list[int], tokens: int, block: int, use_cache: bool = True
) -> Iterator[int]:
    return network.generate(
        model,
        prompt,
        max_new_tokens=tokens,
        block_size=block,
        vocab_size=VOCAB,
        temperature=0.0,
        use_cache=use_cache,
    )


def tokens_per_second(network, model, prompt: list[int], tokens: int, block: int, use_cache: bool) -> float:
    start = time.perf_counter()
    produced = sum(1 for _ in greedy(network, model, prompt, tokens, block, use_cache))
    return produced / (time.perf_counter() - start)


def alternating_medians(
    first: Callable[[], float], second: Callable[[], float], runs: int
) -> tuple[float, float]:
    """The medians of `runs` measurements of each, taken A B A B ... so that drift hits both alike."""
    firsts, seconds = [], []
    for _ in range(runs):
        firsts.append(first())
        seconds.append(second())
    return statistics.median(firsts), statistics.median(seconds)


def measure_lora(
    project: Path, tokens: int, runs: int, shapes: list[str], rank: int, device: str
) -> list[dict]:
    """Adapters beside the weights against adapters merged into them, alternating, medians."""
    import copy

    import torch

    sys.path.insert(0, str(project / "src"))
    import network

    torch.manual_seed(0)
    rows = []
    for name in shapes:
        shape, block = SHAPES[name], SHAPES[name]["block_size"]
        base = network.GPT(network.GPTConfig(vocab_size=VOCAB, **shape))
        adapted = network.add_lora(base, rank=rank, alpha=2.0 * rank).to(device).eval()
        for parameter_name, parameter in adapted.named_parameters():
            if parameter_name.endswith("lora_b"):
                parameter.data.normal_(std=0.02)
        merged = network.merge_lora(copy.deepcopy(adapted))
        prompt = torch.randint(0, VOCAB, (block // 2,)).tolist()
        # Both sample the same tokens (this also warms both up).
        same = list(greedy(network, adapted, prompt, tokens, block)) == list(
            greedy(network, merged, prompt, tokens, block)
        )
        a, b = alternating_medians(
            partial(tokens_per_second, network, adapted, prompt, tokens, block, True),
            partial(tokens_per_second, network, merged, prompt, tokens, block, True),
            runs,
        )
        rows.append(
            {
                "shape": name,
                "rank": rank,
                "new_tokens": tokens,
                "adapters_tokens_per_s": round(a, 1),
                "merged_tokens_per_s": round(b, 1),
                "speedup": round(b / a, 2),
                "same_tokens": same,
            }
        )
    return rows


def hf_greedy(model, context, tokens: int) -> list[int]:
    """transformers' greedy `generate`, exactly `tokens` new ones (no end token stops it)."""
    import torch

    with torch.no_grad():
        made = model.generate(
            context, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, pad_token_id=0
        )
    return made[0, context.shape[1] :].tolist()


def hf_tokens_per_second(model, context, tokens: int) -> float:
    start = time.perf_counter()
    produced = len(hf_greedy(model, context, tokens))
    return produced / (time.perf_counter() - start)


def measure_against_hf(project: Path, tokens: int, runs: int, shapes: list[str], device: str) -> list[dict]:
    """The project's generate against transformers' on the same weights, alternating, medians."""
    import torch

    sys.path.insert(0, str(project / "src"))
    import export
    import network

    torch.manual_seed(0)
    rows = []
    for name in shapes:
        shape, block = SHAPES[name], SHAPES[name]["block_size"]
        ours = network.GPT(network.GPTConfig(vocab_size=VOCAB, **shape)).to(device).eval()
        theirs = export.gpt2_of(ours, VOCAB, None).to(device).eval()
        prompt = torch.randint(0, VOCAB, (block // 2,)).tolist()
        context = torch.tensor([prompt], device=device)
        # Both sample the same tokens (this also warms both up).
        same = list(greedy(network, ours, prompt, tokens, block)) == hf_greedy(theirs, context, tokens)
        a, b = alternating_medians(
            partial(tokens_per_second, network, ours, prompt, tokens, block, True),
            partial(hf_tokens_per_second, theirs, context, tokens),
            runs,
        )
        rows.append(
            {
                "shape": name,
                "new_tokens": tokens,
                "project_tokens_per_s": round(a, 1),
                "transformers_tokens_per_s": round(b, 1),
                "ratio": round(a / b, 2),
                "same_tokens": same,
            }
        )
    return rows


def measure(project: Path, tokens: int, runs: int, shapes: list[str], device: str = "cpu") -> list[dict]:
    import torch

    sys.path.insert(0, str(project / "src"))
    import network

    torch.manual_seed(0)
    rows = []
    for name in shapes:
        shape = SHAPES[name]
        model = network.GPT(network.GPTConfig(vocab_size=VOCAB, **shape)).to(device).eval()
        prompt = torch.randint(0, VOCAB, (shape["block_size"] // 2,)).tolist()
        block = shape["block_size"]
        tokens_per_second(network, model, prompt, 4, block, True)  # warm-up
        with_cache, without = alternating_medians(
            partial(tokens_per_second, network, model, prompt, tokens, block, True),
            partial(tokens_per_second, network, model, prompt, tokens, block, False),
            runs,
        )
        rows.append(
            {
                "shape": name,
                "prompt_tokens": len(prompt),
                "new_tokens": tokens,
                "cached_tokens_per_s": round(with_cache, 1),
                "rerun_tokens_per_s": round(without, 1),
                "speedup": round(with_cache / without, 2),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", type=Path, help="a rendered causal-lm project (default: render one)")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per generation")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--device", default="cpu", help="cpu, cuda ... (float32 weights, as served)")
    parser.add_argument("--lora", type=int, metavar="RANK", help="compare LoRA adapters with them merged")
    parser.add_argument(
        "--against-hf", action="store_true", help="compare with transformers' generate on the same weights"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = args.project
        if project is None:
            project = Path(scratch) / "lm"
            command = [sys.executable, "-m", "ccpt", "new", str(project), "--spec", "causal-lm", "--defaults"]
            command.append("--no-git")
            subprocess.run(command, check=True, capture_output=True)
        if args.lora:
            rows = measure_lora(project, args.tokens, args.runs, args.shapes, args.lora, args.device)
        elif args.against_hf:
            rows = measure_against_hf(project, args.tokens, args.runs, args.shapes, args.device)
        else:
            rows = measure(project, args.tokens, args.runs, args.shapes, args.device)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    if args.lora:
        print(
            f"{'shape':<10} {'rank':>4} {'new':>4} {'adapters tok/s':>15} {'merged tok/s':>13}"
            f" {'speedup':>8} same"
        )
        for row in rows:
            speeds = f"{row['adapters_tokens_per_s']:>15,.1f} {row['merged_tokens_per_s']:>13,.1f}"
            print(
                f"{row['shape']:<10} {row['rank']:>4} {row['new_tokens']:>4} {speeds}"
                f" {row['speedup']:>7.2f}x {row['same_tokens']}"
            )
        return
    if args.against_hf:
        print(f"{'shape':<10} {'new':>4} {'project tok/s':>14} {'transformers tok/s':>19} {'ratio':>6} same")
        for row in rows:
            speeds = f"{row['project_tokens_per_s']:>14,.1f} {row['transformers_tokens_per_s']:>19,.1f}"
            ratio = f"{row['ratio']:>5.2f}x {row['same_tokens']}"
            print(f"{row['shape']:<10} {row['new_tokens']:>4} {speeds} {ratio}")
        return
    print(f"{'shape':<10} {'prompt':>6} {'new':>4} {'cached tok/s':>13} {'rerun tok/s':>12} {'speedup':>8}")
    for row in rows:
        sizes = f"{row['shape']:<10} {row['prompt_tokens']:>6} {row['new_tokens']:>4}"
        speeds = f"{row['cached_tokens_per_s']:>13,.1f} {row['rerun_tokens_per_s']:>12,.1f}"
        print(f"{sizes} {speeds} {row['speedup']:>7.2f}x")


if __name__ == "__main__":
    main()
