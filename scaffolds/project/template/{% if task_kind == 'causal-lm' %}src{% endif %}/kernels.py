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
