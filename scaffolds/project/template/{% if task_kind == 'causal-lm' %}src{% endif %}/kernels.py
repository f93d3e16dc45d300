"""Hand-written GPU kernels (Triton) for the loss over the logits, the largest tensor of a step.

At GPT-2 size and batch 64 the logits are 65,536 x 50,304 bf16 values (6.6 GB). Computing the
loss and its gradient is pure memory traffic, so its cost is the bytes moved. Two kernels move
the fewest: the forward pass reads the logits once (an online log-sum-exp per row, giving the
loss); the backward pass reads them once more and writes the gradient, (softmax - one-hot) times
the incoming gradient over the row count. Nothing the size of the logits is stored in float32.
torch.compile's own fusion of the same math took two reads, a write and a pass over a zero
gradient, at about half the card's bandwidth.

`cross_entropy(logits, targets)` is the mean loss of [rows, vocabulary] logits. It is a PyTorch
operator (`torch.library.triton_op`) so torch.compile keeps it whole; `usable(logits)` says
whether it can run here: Triton installed, and the logits on a CUDA GPU (or Triton's CPU
interpreter turned on with TRITON_INTERPRET=1, which the tests use).

`float8_linear_cross_entropy(hidden, weight, targets)` is the output layer and that loss in one
operator, its three matmuls (logits forward; the hidden states' and the weight's gradients
backward) in float8, which Hopper and Ada tensor cores run at twice bf16's rate. The output layer
is the largest matmul of a GPT-2 step (27% of its FLOPs); in float8 a step at batch 32 on an H200
ran 5% faster, and 400 steps on real text ended at the bf16 run's loss (benchmarks/fp8_head.py).
"""

from __future__ import annotations

import os

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the model falls back to PyTorch's own loss
    triton = None


AVAILABLE = triton is not None and hasattr(torch.library, "triton_op")  # triton_op: torch >= 2.6


def usable(logits: torch.Tensor) -> bool:
    return AVAILABLE and (logits.is_cuda or os.environ.get("TRITON_INTERPRET") == "1")


if AVAILABLE:

    @triton.jit
    def row_log_sum_exp(row_ptr, vocab_size, BLOCK: tl.constexpr):
        """log(sum(exp(x))) of one row in one pass: a running maximum and a rescaled sum."""
        running_max = float("-inf")
        running_sum = 0.0
        for start in range(0, vocab_size, BLOCK):
            columns = start + tl.arange(0, BLOCK)
            x = tl.load(row_ptr + columns, mask=columns < vocab_size, other=float("-inf")).to(tl.float32)
            new_max = tl.maximum(running_max, tl.max(x, axis=0))
            running_sum = running_sum * tl.exp(running_max - new_max) + tl.sum(tl.exp(x - new_max), axis=0)
            running_max = new_max
        return running_max + tl.log(running_sum)

    @triton.jit
    def _row_losses(
        logits_ptr, targets_ptr, losses_ptr, lse_ptr, vocab_size, row_stride, BLOCK: tl.constexpr
    ):
        """One program per row: its log-sum-exp, and the loss lse - logit of the target (0 for a
        negative target: a position the loss skips)."""
        row = tl.program_id(0).to(tl.int64)
        logits_ptr += row * row_stride
        lse = row_log_sum_exp(logits_ptr, vocab_size, BLOCK)
        target = tl.load(targets_ptr + row)
        counted = target >= 0
        tl.store(lse_ptr + row, lse)
        target_logit = tl.load(logits_ptr + tl.maximum(target, 0)).to(tl.float32)
        tl.store(losses_ptr + row, tl.where(counted, lse - target_logit, 0.0))

    @triton.jit
    def _logit_grads(
        logits_ptr,
        targets_ptr,
        lse_ptr,
        grad_loss_ptr,
        grads_ptr,
        counted_ptr,
        vocab_size,
        row_stride,
        BLOCK: tl.constexpr,
    ):
        """One program per (row, BLOCK columns): (softmax - one-hot) * grad_loss / counted rows,
        and 0 in a row the loss skips."""
        row = tl.program_id(0).to(tl.int64)
        columns = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        mask = columns < vocab_size
        x = tl.load(logits_ptr + row * row_stride + columns, mask=mask, other=0.0).to(tl.float32)
        lse = tl.load(lse_ptr + row)
        target = tl.load(targets_ptr + row)
        scale = tl.load(grad_loss_ptr).to(tl.float32) / tl.load(counted_ptr).to(tl.float32)
        grad = (tl.exp(x - lse) - (columns == target).to(tl.float32)) * scale
        grad = tl.where(target >= 0, grad, 0.0)
        tl.store(grads_ptr + row * vocab_size + columns, grad.to(grads_ptr.dtype.element_ty), mask=mask)

    LOSS_BLOCK = 4096  # columns a row program reads at a time

    def counted_rows(targets: torch.Tensor) -> torch.Tensor:
        """How many rows the mean is over: those whose target is not skipped (at least one)."""
        return (targets >= 0).sum().clamp(min=1).float()

    GRAD_BLOCK = 2048  # columns per gradient program

    @torch.library.triton_op("project::cross_entropy_forward", mutates_args=())
    def _forward(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows, vocab_size = logits.shape
        losses = torch.empty(rows, device=logits.device, dtype=torch.float32)
        lse = torch.empty(rows, device=logits.device, dtype=torch.float32)
        torch.library.wrap_triton(_row_losses)[(rows,)](
            logits, targets, losses, lse, vocab_size, logits.stride(0), BLOCK=LOSS_BLOCK, num_warps=8
        )
        return losses.sum() / counted_rows(targets), lse

    @torch.library.triton_op("project::cross_entropy_backward", mutates_args=())
    def _backward(
        logits: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor, grad_loss: torch.Tensor
    ) -> torch.Tensor:
        rows, vocab_size = logits.shape
        grads = torch.empty((rows, vocab_size), device=logits.device, dtype=logits.dtype)
        grid = (rows, triton.cdiv(vocab_size, GRAD_BLOCK))
        torch.library.wrap_triton(_logit_grads)[grid](
            logits,
            targets,
            lse,
            grad_loss,
            grads,
            counted_rows(targets),
            vocab_size,
            logits.stride(0),
            BLOCK=GRAD_BLOCK,
            num_warps=8,
        )
        return grads

    def _save_for_backward(ctx, inputs, output) -> None:
        logits, targets = inputs
        ctx.save_for_backward(logits, targets, output[1])

    def _gradient(ctx, grad_loss: torch.Tensor, _grad_lse: torch.Tensor):
        logits, targets, lse = ctx.saved_tensors
        return _backward(logits, targets, lse, grad_loss.reshape(1).contiguous()), None

    _forward.register_autograd(_gradient, setup_context=_save_for_backward)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of [rows, vocabulary] logits (bf16 or float32) against [rows] targets,
    each a token id in [0, vocabulary) or negative (-100) for a position the loss skips, as in
    PyTorch's cross_entropy: the mean is over the positions counted."""
    loss, _ = _forward(logits.contiguous() if logits.stride(1) != 1 else logits, targets.contiguous())
    return loss


# --- The output layer in float8 ------------------------------------------------------------------

E4M3_MAX = 448.0  # float8 e4m3's largest value: the forward operands are scaled into it
GRAD_SCALE = 2.0**14  # |softmax - one-hot| <= 1: at most 16,384 in float8 e5m2 (largest 57,344)


def float8_usable(hidden: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether float8_linear_cross_entropy can run on these: the kernels usable, and every
    dimension a multiple of 16 (the float8 matmuls' tile)."""
    return (
        usable(hidden)
        and hidden.shape[0] % 16 == 0
        and hidden.shape[1] % 16 == 0
        and weight.shape[0] % 16 == 0
    )


def _tensor_scale(x: torch.Tensor) -> torch.Tensor:
    """One scale for the whole tensor (its largest magnitude over e4m3's largest value): x / scale
    fits e4m3, and the matmul multiplies the scale back."""
    return (x.abs().amax().float() / E4M3_MAX).clamp(min=1e-12)


def _to_e4m3(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (x.float() / scale).to(torch.float8_e4m3fn)


def _matmul8(
    a: torch.Tensor,
    b: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype,
    fast: bool = False,
) -> torch.Tensor:
    """(a * scale_a) @ (b * scale_b)^T for float8 a [m, k] and b [n, k]: each with the dimension
    summed over contiguous, the layout Hopper's float8 matmuls take. `fast`: accumulate without
    periodic promotion to float32."""
    return torch._scaled_mm(
        a, b.t(), scale_a=scale_a, scale_b=scale_b, out_dtype=out_dtype, use_fast_accum=fast
    )


if AVAILABLE:

    @triton.jit
    def _float8_logit_grads(
        logits_ptr,
        targets_ptr,
        lse_ptr,
        grads_ptr,
        grads_t_ptr,
        rows,
        vocab_size,
        GRAD_SCALE: tl.constexpr,
        BLOCK_ROWS: tl.constexpr,
        BLOCK_COLUMNS: tl.constexpr,
    ):
        """One program per tile of rows x columns: (softmax - one-hot) * GRAD_SCALE in e5m2 (0 in a
        row the loss skips), stored row-major into grads and transposed into grads_t: the two
        gradient matmuls each want the dimension they sum over contiguous."""
        r = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
        c = tl.program_id(1).to(tl.int64) * BLOCK_COLUMNS + tl.arange(0, BLOCK_COLUMNS)
        row_in, column_in = r < rows, c < vocab_size
        tile = row_in[:, None] & column_in[None, :]
        x = tl.load(logits_ptr + r[:, None] * vocab_size + c[None, :], mask=tile, other=0.0).to(tl.float32)
        lse = tl.load(lse_ptr + r, mask=row_in, other=0.0)
        target = tl.load(targets_ptr + r, mask=row_in, other=-1)
        grad = tl.exp(x - lse[:, None]) - (c[None, :] == target[:, None]).to(tl.float32)
        grad = tl.where((target >= 0)[:, None], grad * GRAD_SCALE, 0.0).to(grads_ptr.dtype.element_ty)
        tl.store(grads_ptr + r[:, None] * vocab_size + c[None, :], grad, mask=tile)
        tl.store(
            grads_t_ptr + c[:, None] * rows + r[None, :],
            tl.trans(grad),
            mask=column_in[:, None] & row_in[None, :],
        )

    # A custom_op, not a triton_op: torch.compile keeps it whole and leaves the float8 matmuls to
    # cuBLAS, as measured.
    @torch.library.custom_op("project::float8_head", mutates_args=())
    def _float8_head(
        hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
    ) -> tuple[
        torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor
    ]:
        """(mean loss, each row's log-sum-exp, bf16 logits, hidden in e4m3 and its scale, weight in
        e4m3 and its scale): the last five are what the backward pass needs."""
        hidden_scale, weight_scale = _tensor_scale(hidden), _tensor_scale(weight)
        hidden8, weight8 = _to_e4m3(hidden, hidden_scale), _to_e4m3(weight, weight_scale)
        # Fast accumulation for the logits, as modded-nanogpt runs them; the gradients' matmuls,
        # summing over 50k vocabulary entries or all of a batch's rows, keep the float32 promotion.
        logits = _matmul8(hidden8, weight8, hidden_scale, weight_scale, torch.bfloat16, fast=True)
        loss, lse = _forward(logits, targets)
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

    @torch.library.custom_op("project::float8_head_backward", mutates_args=())
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
        rows, vocab_size = logits.shape
        grads = torch.empty((rows, vocab_size), device=logits.device, dtype=torch.float8_e5m2)
        grads_t = torch.empty((vocab_size, rows), device=logits.device, dtype=torch.float8_e5m2)
        grid = (triton.cdiv(rows, 64), triton.cdiv(vocab_size, 128))
        _float8_logit_grads[grid](
            logits,
            targets,
            lse,
            grads,
            grads_t,
            rows,
            vocab_size,
            GRAD_SCALE=GRAD_SCALE,
            BLOCK_ROWS=64,
            BLOCK_COLUMNS=128,
            num_warps=8,
        )
        # The matmuls take back GRAD_SCALE, and apply the incoming gradient and the mean's divisor.
        grad_scale = (grad_loss.float() / counted_rows(targets) / GRAD_SCALE).reshape(())
        grad_hidden = _matmul8(grads, weight8.t().contiguous(), grad_scale, weight_scale, torch.bfloat16)
        grad_weight = _matmul8(grads_t, hidden8.t().contiguous(), grad_scale, hidden_scale, torch.float32)
        return grad_hidden, grad_weight

    @_float8_head_backward.register_fake
    def _(grad_loss, logits, lse, targets, hidden8, hidden_scale, weight8, weight_scale):
        return (
            hidden8.new_empty(hidden8.shape, dtype=torch.bfloat16),
            weight8.new_empty(weight8.shape, dtype=torch.float32),
        )

    def _save_float8_head(ctx, inputs, output) -> None:
        hidden, weight, targets = inputs
        _, lse, logits, hidden8, hidden_scale, weight8, weight_scale = output
        ctx.hidden_dtype, ctx.weight_dtype = hidden.dtype, weight.dtype
        ctx.save_for_backward(logits, lse, targets, hidden8, hidden_scale, weight8, weight_scale)

    def _float8_head_gradient(ctx, grad_loss: torch.Tensor, *_unused: torch.Tensor):
        grad_hidden, grad_weight = _float8_head_backward(grad_loss, *ctx.saved_tensors)
        return grad_hidden.to(ctx.hidden_dtype), grad_weight.to(ctx.weight_dtype), None

    _float8_head.register_autograd(_float8_head_gradient, setup_context=_save_float8_head)


def float8_linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean cross-entropy of hidden @ weight^T against targets, the bf16 logits): hidden [rows,
    width] (cast to bf16 first), weight [vocabulary, width], targets [rows] (negative: skipped),
    the matmuls in float8 with one scale per tensor. The logits come back without a gradient."""
    loss, _, logits, *_ = _float8_head(hidden.to(torch.bfloat16).contiguous(), weight, targets.contiguous())
    return loss, logits.detach()
