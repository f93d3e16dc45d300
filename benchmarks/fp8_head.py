"""The output layer and its loss with float8 matmuls: the measurements behind the generated
causal-LM project's `float8_head` setting (src/kernels.py: `float8_linear_cross_entropy`).

At GPT-2 size the output projection is the largest matmul of a step: [tokens, 768] x [768, 50304]
forward, and two as large backward, 27% of the step's FLOPs. Hopper's tensor cores run float8 at
twice bf16's rate. The project runs those three matmuls in float8 (`torch._scaled_mm`, one scale
per tensor), as the modded-nanogpt GPT-2 speedruns do for their output layer:

- forward: the hidden states and the weight in e4m3, each scaled by its largest magnitude over
  448 (e4m3's largest value); bf16 logits, then the project's Triton loss kernel on them, which
  keeps each row's log-sum-exp;
- backward: one Triton kernel reads the saved logits once and writes d loss / d logits in e5m2,
  twice: row-major for d hidden = G W, and transposed for d W = G^T x, since Hopper's float8
  matmuls take both operands with the summed dimension contiguous. Each gradient value is
  (softmax - one-hot) in [-1, 1] times 2^14, inside e5m2's range (57,344); the matmul's scale
  takes back the 2^14, the incoming gradient and the division by the counted rows.

The bf16 path writes the logits' gradient once in bf16; this writes it twice in one-byte floats:
the same bytes.

    python benchmarks/fp8_head.py --project DIR check      # against float64 PyTorch
    python benchmarks/fp8_head.py --project DIR time       # head + loss, forward + backward
    python benchmarks/fp8_head.py --project DIR quality    # train both ways on real text
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def reference(hidden, weight, targets):
    """Loss and gradients in float64."""
    hidden64 = hidden.detach().double().requires_grad_()
    weight64 = weight.detach().double().requires_grad_()
    loss = torch.nn.functional.cross_entropy(hidden64 @ weight64.t(), targets)
    loss.backward()
    return loss.item(), hidden64.grad, weight64.grad


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want).norm() / want.norm()).item()


def check(rows: int = 4096, width: int = 768, vocab: int = 50304, device: str = "cuda") -> dict:
    """The float8 head and the bf16 one against float64 on GPT-2-like inputs: layer-normed hidden
    states, weights of std 0.02, targets from the logits' own distribution, some skipped."""
    import kernels

    torch.manual_seed(0)
    hidden = torch.nn.functional.layer_norm(torch.randn(rows, width, device=device), (width,))
    weight = torch.randn(vocab, width, device=device) * 0.02
    weight[: vocab // 2] *= 5  # some tokens far likelier than others, as after training
    with torch.no_grad():
        probabilities = torch.softmax(hidden @ weight.t(), dim=-1)
    targets = torch.multinomial(probabilities, 1).squeeze(1)
    targets[::7] = -100
    want_loss, want_hidden, want_weight = reference(hidden, weight, targets)
    results = {"rows": rows, "reference_loss": want_loss}
    for name in ("bf16", "float8"):
        h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        if name == "float8":
            loss, _ = kernels.float8_linear_cross_entropy(h, w, targets)
        else:
            with torch.autocast(device, dtype=torch.bfloat16):
                loss = kernels.cross_entropy(torch.nn.functional.linear(h, w), targets)
        loss.backward()
        results[name] = {
            "loss_error": abs(loss.item() - want_loss),
            "grad_hidden_error": relative_error(h.grad, want_hidden),
            "grad_weight_error": relative_error(w.grad, want_weight),
        }
    return results


def time_heads(rows_list: list[int], width: int = 768, vocab: int = 50304) -> list[dict]:
    """Forward + backward of the output layer and loss, bf16 (as shipped) against float8."""
    import kernels
    from triton.testing import do_bench

    rows_out = []
    for rows in rows_list:
        hidden = torch.randn(rows, width, device="cuda", dtype=torch.bfloat16).requires_grad_()
        weight = (torch.randn(vocab, width, device="cuda") * 0.02).requires_grad_()
        targets = torch.randint(0, vocab, (rows,), device="cuda")

        def bf16_step(hidden=hidden, weight=weight, targets=targets):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = kernels.cross_entropy(torch.nn.functional.linear(hidden, weight), targets)
            loss.backward()

        def float8_step(hidden=hidden, weight=weight, targets=targets):
            kernels.float8_linear_cross_entropy(hidden, weight, targets)[0].backward()

        row = {"rows": rows}
        for name, step in (("bf16", bf16_step), ("float8", float8_step)):
            row[name + "_ms"] = do_bench(
                step, warmup=50, rep=300, grad_to_none=[hidden, weight], return_mode="median"
            )
        row["ratio"] = row["bf16_ms"] / row["float8_ms"]
        rows_out.append(row)
    return rows_out


def quality(steps: int, batch: int, heads: list[str]) -> list[dict]:
    """Train the project's GPT (GPT-2 124M shape) on the Python standard library's source, BPE
    tokens, once per head, same seed and data order: the float8 head should learn as the bf16 one."""
    import network
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    library = Path(__import__("os").__file__).parent
    text = "\n".join(p.read_text(errors="ignore") for p in sorted(library.glob("**/*.py"))[:2500])
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator([text], trainers.BpeTrainer(vocab_size=16384, show_progress=False))
    ids = torch.tensor(tokenizer.encode(text).ids, dtype=torch.long)
    held_out = ids[-len(ids) // 20 :]
    ids = ids[: -len(ids) // 20]
    results = []
    for head in heads:
        torch.manual_seed(0)
        shape = {"vocab_size": 16384, "block_size": 1024, "n_layer": 12, "n_head": 12, "n_embd": 768}
        model = network.GPT(network.GPTConfig(**shape, float8_head=head == "float8")).cuda()
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True
        )
        compiled = torch.compile(model)
        generator = torch.Generator().manual_seed(1)
        losses = []
        started = time.perf_counter()
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = 6e-4 * min(1.0, (step + 1) / 50)
            starts = torch.randint(0, len(ids) - 1025, (batch,), generator=generator)
            chunk = torch.stack([ids[s : s + 1025] for s in starts]).cuda(non_blocking=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                _, loss = compiled(chunk[:, :-1], chunk[:, 1:])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
        seconds = time.perf_counter() - started
        model.eval()
        evaluation = []
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            for start in range(0, min(len(held_out) - 1025, 64 * 1024), 1024):
                chunk = held_out[start : start + 1025].cuda()[None]
                logits = model(chunk[:, :-1])[0]  # without a gradient: the bf16 head either way
                evaluation.append(
                    torch.nn.functional.cross_entropy(
                        logits.float().view(-1, logits.shape[-1]), chunk[0, 1:]
                    ).item()
                )
        results.append(
            {
                "head": head,
                "train_loss_last_20": sum(losses[-20:]) / 20,
                "train_loss_at": {
                    s: round(losses[s - 1], 3) for s in (10, 50, 100, 200, 400, steps) if s <= steps
                },
                "eval_loss": sum(evaluation) / len(evaluation),
                "seconds": seconds,
            }
        )
        print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--vocab", type=int, default=50304)
    parser.add_argument("--device", default="cuda", help="check only: cpu runs Triton's interpreter")
    parser.add_argument("what", choices=["check", "time", "quality"])
    args = parser.parse_args()
    sys.path.insert(0, str(args.project / "src"))
    if args.what == "check":
        print(json.dumps(check(args.rows, vocab=args.vocab, device=args.device), indent=1))
    elif args.what == "time":
        for row in time_heads([16384, 32768, 65536]):
            print(json.dumps(row), flush=True)
    else:
        quality(args.steps, args.batch, ["bf16", "float8", "bf16"])


if __name__ == "__main__":
    main()
