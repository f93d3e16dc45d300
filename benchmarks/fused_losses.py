"""Fused cross-entropy losses for the causal-LM lever benchmark (candidates measured and not
adopted; the generated project ships the two Triton kernels of its src/kernels.py, lever
`tritonce`).

Each computes the gradient in the forward pass, while the logits are in hand, so the backward pass
no longer reads the 65,536 x 50,304 logits of a batch-64 step again:

- `fused_cross_entropy(logits, targets)`: the loss and d loss / d logits in one pass; backward
  only scales the saved gradient by the incoming one.
- `fused_linear_cross_entropy(hidden, weight, targets)`: the output projection too (Liger
  Kernel's design, without its chunking): forward also runs the two backward matmuls, so what is
  saved for backward is the small gradients of the hidden states and the weight, not the logits.
- `one_pass_linear_cross_entropy(hidden, weight, targets, warps)` (lever `onepass`, GPU only): the
  projection by cuBLAS, then one Triton program per row that takes the log-sum-exp in a first pass
  and writes the gradient in a second, hoping to find the row (100 KB) still in L2; backward runs
  the two matmuls the gradient feeds and scales their small results by the incoming gradient.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the CPU-only machines that render projects; the levers run on a GPU
    triton = None


def _loss_and_logit_grad(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and its gradient (softmax - one-hot) / N, in the logits' dtype."""
    logits32 = logits.float()
    lse = torch.logsumexp(logits32, dim=-1, keepdim=True)
    target_logit = logits32.gather(1, targets[:, None])
    loss = (lse - target_logit).mean()
    vocab = torch.arange(logits.shape[1], device=logits.device)
    one_hot = (vocab[None, :] == targets[:, None]).to(torch.float32)  # fused: never materialised
    grad = ((torch.exp(logits32 - lse) - one_hot) / targets.numel()).to(logits.dtype)
    return loss, grad


class FusedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss, grad = _loss_and_logit_grad(logits, targets)
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return grad * grad_loss.to(grad.dtype), None


class FusedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = hidden @ weight.t()  # bf16 under autocast, like the model's own lm_head
        loss, grad_logits = _loss_and_logit_grad(logits, targets)
        grad_hidden = (grad_logits @ weight.to(grad_logits.dtype)).to(hidden.dtype)
        grad_weight = (grad_logits.t() @ hidden.to(grad_logits.dtype)).to(weight.dtype)
        ctx.save_for_backward(grad_hidden, grad_weight)
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_loss, grad_weight * grad_loss, None


def fused_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return FusedCrossEntropy.apply(logits, targets)


def fused_linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    return FusedLinearCrossEntropy.apply(hidden, weight, targets)


if triton is not None:
    from kernels import row_log_sum_exp  # the project's src/ is on the path (causal_lm_levers.py)

    @triton.jit
    def _row_losses_and_grads(
        logits_ptr, targets_ptr, losses_ptr, grads_ptr, vocab_size, row_stride, rows, BLOCK: tl.constexpr
    ):
        """One program per row: the log-sum-exp in a first pass over the row, then the gradient,
        (softmax - one-hot) / rows, in a second, which would find the row (100 KB at GPT-2's
        vocabulary) still in the L2 cache if few enough rows were in flight. Measured on an H200 at
        batch 32: 2.4 ms (8 warps), 3.0 (16), 4.5 (32), against 2.7 ms for the project's two
        kernels."""
        row = tl.program_id(0).to(tl.int64)
        logits_ptr += row * row_stride
        grads_ptr += row * vocab_size
        lse = row_log_sum_exp(logits_ptr, vocab_size, BLOCK)
        target = tl.load(targets_ptr + row)
        tl.store(losses_ptr + row, lse - tl.load(logits_ptr + target).to(tl.float32))
        for start in range(0, vocab_size, BLOCK):
            columns = start + tl.arange(0, BLOCK)
            mask = columns < vocab_size
            x = tl.load(logits_ptr + columns, mask=mask, other=0.0).to(tl.float32)
            grad = (tl.exp(x - lse) - (columns == target).to(tl.float32)) / rows
            tl.store(grads_ptr + columns, grad.to(grads_ptr.dtype.element_ty), mask=mask)

    @torch.library.triton_op("bench::cross_entropy_and_gradient", mutates_args=())
    def _loss_and_gradient(
        logits: torch.Tensor, targets: torch.Tensor, warps: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows, vocab_size = logits.shape
        losses = torch.empty(rows, device=logits.device, dtype=torch.float32)
        grads = torch.empty((rows, vocab_size), device=logits.device, dtype=logits.dtype)
        torch.library.wrap_triton(_row_losses_and_grads)[(rows,)](
            logits,
            targets,
            losses,
            grads,
            vocab_size,
            logits.stride(0),
            rows,
            BLOCK=4096,
            num_warps=warps,
        )
        return losses.mean(), grads

    class _LinearCrossEntropy(torch.autograd.Function):
        """The output projection and the loss as one step. Its forward computes the gradient of
        the logits at once (see above); backward scales it by the incoming gradient only after the
        two matmuls it feeds, on their far smaller results."""

        @staticmethod
        def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, warps: int):
            logits = hidden @ weight.t()
            loss, grads = _loss_and_gradient(logits, targets, warps)
            ctx.save_for_backward(grads, hidden, weight)
            ctx.mark_non_differentiable(logits)
            return loss, logits

        @staticmethod
        def backward(ctx, grad_loss: torch.Tensor, _grad_logits: torch.Tensor):
            grads, hidden, weight = ctx.saved_tensors
            grad_loss = grad_loss.to(grads.dtype)
            return (grads @ weight) * grad_loss, (grads.t() @ hidden) * grad_loss, None, None


def one_pass_linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, warps: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean cross-entropy, detached logits) of hidden @ weight.T; under autocast in its dtype."""
    if torch.is_autocast_enabled(hidden.device.type):
        dtype = torch.get_autocast_dtype(hidden.device.type)
        hidden, weight = hidden.to(dtype), weight.to(dtype)
    return _LinearCrossEntropy.apply(hidden.contiguous(), weight, targets.contiguous(), warps)
