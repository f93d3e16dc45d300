"""Two fused cross-entropy losses for the causal-LM lever benchmark (earlier candidates; the
generated project now ships the Triton kernels of its src/kernels.py, lever `tritonce`).

Both compute the gradient in the forward pass, while the logits are in hand, so the backward pass
no longer reads the 65,536 x 50,304 logits of a batch-64 step again:

- `fused_cross_entropy(logits, targets)`: the loss and d loss / d logits in one pass; backward
  only scales the saved gradient by the incoming one.
- `fused_linear_cross_entropy(hidden, weight, targets)`: the output projection too (Liger
  Kernel's design, without its chunking): forward also runs the two backward matmuls, so what is
  saved for backward is the small gradients of the hidden states and the weight, not the logits.
"""

from __future__ import annotations

import torch


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
