"""Training throughput: the generated causal-LM trainer against the Hugging Face Trainer.

One invocation runs, each in its own process, on the same model shape, the same random-token
data and the same per-GPU batch:
  (a) the trainer of a project rendered by `ccpt new --spec causal-lm`: its own `Trainer`, its own
      lean GPT (network.GPT), its own hardware defaults (bf16 autocast, torch.compile, fused AdamW
      on CUDA, the output layer's matmuls in float8 on Ada and Hopper GPUs; fp32 eager on CPU),
      fed by its own DataLoader over a TokenWindows split;
  (b) Hugging Face `Trainer` with `bf16=True` and otherwise defaults (benchmarks/hf_trainer_reference.py).
Warm-up steps (compilation included) are excluded; tokens/s is the median over the timed logging
windows of (a) and over the timed steps of (b).

MFU = tokens/s x flops_per_token / peak, nanoGPT's estimate: flops_per_token = 6 N + 12 L H Q T
(N = parameters without the position embedding, L layers, H heads, Q head size, T context),
peak = 989 TFLOP/s dense bf16 per H100/H200 GPU. The same N is used for both trainers. Where the
generated trainer runs its output layer in float8 (config float8_head), the FLOPs and the peak
are still counted as bf16 ones: MFU here compares work done per second with the same yardstick.

    python benchmarks/train_throughput.py --project DIR --batch 16 [--device cuda] [--nproc 2]
    python benchmarks/train_throughput.py --device cpu --tiny      # here, in about a minute

Without --project a causal-lm project is rendered with `ccpt new` into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEAK_FLOPS = 989e12
GPT2_124M = {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024, "vocab_size": 50304}
RECORDED_SETTINGS = ("precision", "compile", "float8_head", "grad_accum_steps")
TINY = {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 128, "vocab_size": 512}


def flops_per_token(shape: dict[str, int]) -> float:
    """nanoGPT's estimate for a GPT-2-style model with tied embeddings and no biases."""
    d, layers, vocab, context = shape["n_embd"], shape["n_layer"], shape["vocab_size"], shape["block_size"]
    weights = vocab * d + layers * 12 * d * d  # token embedding (tied) + attention and MLP matrices
    return 6 * weights + 12 * layers * shape["n_head"] * (d // shape["n_head"]) * context


# --- (a) the generated trainer, run inside the project ----------------------------------------


def generated_worker(project: Path, shape: dict[str, int], batch: int, steps: int, sets: list[str]) -> dict:
    """Train the project's GPT with its own Trainer on random tokens; return its measurements."""
    sys.path.insert(0, str(project / "src"))
    import config as project_config
    import data as project_data
    import network
    import torch
    import trainer as project_trainer

    cuda = torch.cuda.is_available() and os.environ.get("BENCH_DEVICE", "cuda") == "cuda"
    overrides = dict(item.split("=", 1) for item in sets)
    config = project_config.Config(
        device="cuda" if cuda else "cpu",
        batch_size=batch,
        max_steps=steps,
        block_size=shape["block_size"],
        n_layer=shape["n_layer"],
        n_head=shape["n_head"],
        n_embd=shape["n_embd"],
        log_every=5,
        eval_every=10**9,  # one evaluation, at the end, outside the timed windows
        eval_batches=2,
        runs_dir=tempfile.mkdtemp(prefix="bench-runs-"),
    )
    for name, value in overrides.items():
        kind = type(getattr(config, name)).__name__
        setattr(config, name, project_config.parse_value(name, value, kind))
    float8 = cuda and project_trainer.has_float8_tensor_cores()
    config = project_config.resolve_auto(config, cuda, float8=float8)
    runtime = project_trainer.setup_runtime(config)

    vocab = shape["vocab_size"] - 47 if shape["vocab_size"] == 50304 else shape["vocab_size"]
    generator = torch.Generator().manual_seed(runtime.rank)
    per_rank_tokens = (steps + 2) * batch * config.grad_accum_steps * shape["block_size"] + 1
    tokens = torch.randint(0, vocab, (per_rank_tokens * runtime.world_size,), generator=generator)
    val_tokens = torch.randint(0, vocab, (4 * batch * shape["block_size"] + 1,), generator=generator)
    preprocessor = type("RandomTokens", (), {"vocab_size": vocab})()
    task_data = project_data.TaskData(
        train=project_data.TokenWindows(tokens, shape["block_size"]),
        val=project_data.TokenWindows(val_tokens, shape["block_size"]),
        preprocessor=preprocessor,
    )
    model = network.GPT(
        network.GPTConfig(
            vocab_size=vocab,
            block_size=shape["block_size"],
            n_layer=shape["n_layer"],
            n_head=shape["n_head"],
            n_embd=shape["n_embd"],
            float8_head=config.float8_head == "true",
        )
    )
    run_dir = Path(config.runs_dir) / "bench"
    run_dir.mkdir(parents=True)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    project_trainer.Trainer(config, task_data, model, run_dir, runtime).fit()
    project_trainer.teardown_runtime(runtime)
    if not runtime.is_main:  # rank 0 alone writes the metrics log
        return {}
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    windows = [r for r in records if r.get("kind", "train") == "train" and "tokens_per_s" in r]
    timed = [r["tokens_per_s"] for r in windows if r["step"] > steps // 3]  # first third: warm-up
    return {
        "trainer": "generated",
        "device": "cuda" if cuda else "cpu",
        "world_size": runtime.world_size,
        "batch": batch,
        "seq_len": shape["block_size"],
        "timed_windows": len(timed),
        "tokens_per_s": statistics.median(timed),
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "params": sum(p.numel() for p in model.parameters()),
        "config": {k: getattr(config, k) for k in RECORDED_SETTINGS} | overrides,
        "torch": torch.__version__,
    }


# --- the driver --------------------------------------------------------------------------------


def run_child(argv: list[str], env: dict[str, str]) -> dict:
    """Run one measurement process and return the JSON it printed after 'RESULT '."""
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    results = [line[len("RESULT ") :] for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not results:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-6000:])
        raise SystemExit(f"measurement failed: {' '.join(argv)}")
    return json.loads(results[-1])


def render_project(workdir: Path) -> Path:
    ccpt = [sys.executable, "-m", "ccpt"]
    argv = [*ccpt, "new", "lm", "--spec", "causal-lm", "--defaults", "--no-git"]
    done = subprocess.run(argv, cwd=workdir, capture_output=True, text=True)
    if done.returncode != 0:  # output captured: its "next steps" panel would only confuse here
        sys.stderr.write(done.stderr)
        raise SystemExit(f"rendering the project failed: {' '.join(argv)}")
    print("rendered a causal-lm project (ccpt new --spec causal-lm) in a temporary folder", flush=True)
    return workdir / "lm"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", type=Path, help="a rendered causal-lm project (default: render one)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model at context 128 (CPU smoke run)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--nproc", type=int, default=1, help="GPUs for the generated trainer (DDP)")
    parser.add_argument("--only", choices=["generated", "hf"], help="run one side only")
    parser.add_argument("--set", action="append", default=[], help="a project setting for (a), NAME=VALUE")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = TINY if args.tiny else GPT2_124M

    if args.worker:
        result = generated_worker(args.project, shape, args.batch, args.steps, args.set)
        if result:
            print("RESULT " + json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        project = args.project or render_project(Path(tmp))
        env = {**os.environ, "BENCH_DEVICE": args.device, "PYTHONUNBUFFERED": "1"}
        if args.device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        results = []
        if args.only != "hf":
            worker = [str(Path(__file__).resolve()), "--worker", "--project", str(project)]
            worker += ["--batch", str(args.batch), "--steps", str(args.steps)] + ["--tiny"] * args.tiny
            worker += [f"--set={item}" for item in args.set]
            launcher = [sys.executable]
            if args.nproc > 1:
                launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
                launcher += [f"--nproc-per-node={args.nproc}"]
            results.append(run_child([*launcher, *worker], env))
        if args.only != "generated":
            reference = [sys.executable, str(HERE / "hf_trainer_reference.py"), "--batch", str(args.batch)]
            reference += ["--steps", str(max(args.steps // 2, 20)), "--warmup", "8", "--device", args.device]
            results.append(run_child(reference + ["--tiny"] * args.tiny, env))

    per_token = flops_per_token(shape)
    for result in results:
        gpus = result.get("world_size", 1) if result["device"] == "cuda" else 0
        result["mfu"] = result["tokens_per_s"] * per_token / (PEAK_FLOPS * max(gpus, 1)) if gpus else None
    if len(results) == 2:
        results[0]["ratio_over_hf"] = results[0]["tokens_per_s"] / results[1]["tokens_per_s"]
    print(
        f"{'trainer':<12} {'device':<6} {'gpus':>4} {'batch':>5} {'tokens/s':>12} {'MFU':>7} {'peak GiB':>9}"
    )
    for r in results:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        mem = f"{r['peak_mem_gib']:.1f}" if r.get("peak_mem_gib") else "-"
        gpus = r.get("world_size", 1) if r["device"] == "cuda" else 0
        print(
            f"{r['trainer']:<12} {r['device']:<6} {gpus:>4} {r['batch']:>5} {r['tokens_per_s']:>12,.0f}"
            f" {mfu:>7} {mem:>9}"
        )
    if len(results) == 2:
        print(f"generated / HF Trainer: {results[0]['ratio_over_hf']:.2f}x tokens/s")
    if args.json:
        args.json.write_text(json.dumps({"flops_per_token": per_token, "results": results}, indent=2))


if __name__ == "__main__":
    main()
