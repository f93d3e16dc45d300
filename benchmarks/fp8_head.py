"""The output layer and its loss with float8 matmuls (lever `fp8head` of causal_lm_levers.py).

At GPT-2 size the output projection is the largest matmul of a step: [tokens, 768] x [768, 50304]
forward, and two as large backward, 27% of the step's FLOPs. Hopper's tensor cores run float8 at
twice bf16's rate. This runs those three matmuls in float8 (`torch._scaled_mm`, one scale per
tensor), as the modded-nanogpt GPT-2 speedruns do for their output layer:

- forward: the hidden states and the weight in e4m3, each scaled by its largest magnitude over
  448 (e4m3's largest value); bf16 logits, then the project's Triton loss kernel (kernels.py) on
  them, which keeps each row's log-sum-exp;
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

try:
    import triton
    import triton.language as tl
except ImportError:  # the CPU-only machine that renders projects; this runs on a GPU
    triton = None

E4M3_MAX = 448.0
GRAD_SCALE = 2.0**14  # |softmax - one-hot| <= 1, so at most 16,384 in e5m2 (largest 57,344)


def tensor_scale(x: torch.Tensor) -> torch.Tensor:
    """x's largest magnitude over e4m3's: x / scale fits float8, and the matmul multiplies it back."""
    return (x.abs().amax().float() / E4M3_MAX).clamp(min=1e-12)


def to_e4m3(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (x.float() / scale).to(torch.float8_e4m3fn)


if triton is not None:

    @triton.jit
    def _float8_logit_grads(
        logits_ptr,
        targets_ptr,
        lse_ptr,
        grads_ptr,
        grads_t_ptr,
        rows,
        vocab_size,
        BLOCK_ROWS: tl.constexpr,
        BLOCK_COLUMNS: tl.constexpr,
    ):
        """One program per tile of rows x columns: (softmax - one-hot) * 2^14 in e5m2, 0 in a row
        the loss skips; stored row-major into grads and transposed into grads_t."""
        r = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
        c = tl.program_id(1).to(tl.int64) * BLOCK_COLUMNS + tl.arange(0, BLOCK_COLUMNS)
        row_in, column_in = r < rows, c < vocab_size
        mask = row_in[:, None] & column_in[None, :]
        x = tl.load(logits_ptr + r[:, None] * vocab_size + c[None, :], mask=mask, other=0.0).to(tl.float32)
        lse = tl.load(lse_ptr + r, mask=row_in, other=0.0)
        target = tl.load(targets_ptr + r, mask=row_in, other=-1)
        grad = tl.exp(x - lse[:, None]) - (c[None, :] == target[:, None]).to(tl.float32)
        grad = tl.where((target >= 0)[:, None], grad * 16384.0, 0.0).to(grads_ptr.dtype.element_ty)
        tl.store(grads_ptr + r[:, None] * vocab_size + c[None, :], grad, mask=mask)
        tl.store(
            grads_t_ptr + c[:, None] * rows + r[None, :],
            tl.trans(grad),
            mask=column_in[:, None] & row_in[None, :],
        )


@torch.library.custom_op("ccpt_bench::float8_head", mutates_args=())
def _float8_head(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean loss, log-sum-exps, logits, hidden e4m3, its scale, weight e4m3, its scale)."""
    import kernels  # the project's src/, on the path

    hidden_scale, weight_scale = tensor_scale(hidden), tensor_scale(weight)
    hidden8, weight8 = to_e4m3(hidden, hidden_scale), to_e4m3(weight, weight_scale)
    logits = torch._scaled_mm(
        hidden8,
        weight8.t(),
        scale_a=hidden_scale,
        scale_b=weight_scale,
        out_dtype=torch.bfloat16,
        use_fast_accum=True,
    )
    loss, lse = kernels._forward(logits, targets)
    return loss, lse, logits, hidden8, hidden_scale, weight8, weight_scale


@_float8_head.register_fake
def _(hidden, weight, targets):
    rows, vocab_size = hidden.shape[0], weight.shape[0]
    scalar = hidden.new_empty((), dtype=torch.float32)
    return (
        scalar,
        hidden.new_empty(rows, dtype=torch.float32),
        hidden.new_empty((rows, vocab_size), dtype=torch.bfloat16),
        hidden.new_empty(hidden.shape, dtype=torch.float8_e4m3fn),
        scalar.clone(),
        weight.new_empty(weight.shape, dtype=torch.float8_e4m3fn),
        scalar.clone(),
    )


@torch.library.custom_op("ccpt_bench::float8_head_backward", mutates_args=())
def _float8_head_backward(
    grad_loss: torch.Tensor,
    logits: torch.Tensor,
    lse: torch.Tensor,
    targets: torch.Tensor,
    hidden8: torch.Tensor,
    hidden_scale: torch.Tensor,
    weight8: torch.Tensor,
    weight_scale: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(d loss / d hidden in bf16, d loss / d weight in float32)."""
    import kernels

    rows, vocab_size = logits.shape
    grads = torch.empty((rows, vocab_size), device=logits.device, dtype=torch.float8_e5m2)
    grads_t = torch.empty((vocab_size, rows), device=logits.device, dtype=torch.float8_e5m2)
    grid = (triton.cdiv(rows, 64), triton.cdiv(vocab_size, 128))
    _float8_logit_grads[grid](
        logits, targets, lse, grads, grads_t, rows, vocab_size, BLOCK_ROWS=64, BLOCK_COLUMNS=128, num_warps=8
    )
    grad_scale = (grad_loss.float() / kernels.counted_rows(targets) / GRAD_SCALE).reshape(())
    # Both operands with the summed dimension contiguous: the small ones are transposed here.
    grad_hidden = torch._scaled_mm(
        grads,
        weight8.t().contiguous().t(),
        scale_a=grad_scale,
        scale_b=weight_scale,
        out_dtype=torch.bfloat16,
    )
    grad_weight = torch._scaled_mm(
        grads_t,
        hidden8.t().contiguous().t(),
        scale_a=grad_scale,
        scale_b=hidden_scale,
        out_dtype=torch.float32,
    )
    return grad_hidden, grad_weight


@_float8_head_backward.register_fake
def _(grad_loss, logits, lse, targets, hidden8, hidden_scale, weight8, weight_scale):
    return (
        hidden8.new_empty(hidden8.shape, dtype=torch.bfloat16),
        weight8.new_empty(weight8.shape, dtype=torch.float32),
    )


def _setup(ctx, inputs, output) -> None:
    hidden, weight, targets = inputs
    _, lse, logits, hidden8, hidden_scale, weight8, weight_scale = output
    ctx.hidden_dtype, ctx.weight_dtype = hidden.dtype, weight.dtype
    ctx.save_for_backward(logits, lse, targets, hidden8, hidden_scale, weight8, weight_scale)


def _gradient(ctx, grad_loss, *_unused):
    grad_hidden, grad_weight = _float8_head_backward(grad_loss, *ctx.saved_tensors)
    return grad_hidden.to(ctx.hidden_dtype), grad_weight.to(ctx.weight_dtype), None


_float8_head.register_autograd(_gradient, setup_context=_setup)


def float8_linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of hidden @ weight^T against targets (negative: skipped), the matmuls in
    float8. hidden [rows, width], weight [vocabulary, width], both dimensions multiples of 16."""
    return _float8_head(hidden.contiguous(), weight, targets.contiguous())[0]


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
            loss = float8_linear_cross_entropy(h.to(torch.bfloat16), w, targets)
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
            float8_linear_cross_entropy(hidden, weight, targets).backward()

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
        model = network.GPT(
            network.GPTConfig(vocab_size=16384, block_size=1024, n_layer=12, n_head=12, n_embd=768)
        ).cuda()
        if head == "float8":

            def forward(self, tokens, targets=None):
                positions = torch.arange(tokens.shape[1], device=tokens.device)
                x = (self.token_embedding(tokens) + self.position_embedding(positions)).to(torch.bfloat16)
                for block in self.blocks:
                    x = block(x)
                hidden = self.norm(x).view(-1, x.shape[-1]).to(torch.bfloat16)
                if targets is None or not torch.is_grad_enabled():
                    return self.lm_head(hidden), None
                return None, float8_linear_cross_entropy(hidden, self.lm_head.weight, targets.reshape(-1))

            model.forward = forward.__get__(model)
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
                logits = (
                    network.GPT.forward(model, chunk[:, :-1])[0]
                    if head == "float8"
                    else model(chunk[:, :-1])[0]
                )
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
