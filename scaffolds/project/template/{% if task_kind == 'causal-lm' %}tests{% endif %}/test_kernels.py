"""The Triton loss kernels (src/kernels.py) against PyTorch's cross-entropy in float64.

On a machine with Triton but no GPU they run in Triton's interpreter (TRITON_INTERPRET=1, set
before Triton loads, hence a child process); on a CUDA GPU they run as compiled, at full size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

HERE = Path(__file__).resolve().parent

# Shapes that do not divide into the kernels' column blocks (4096 and 2048): the masked tails count.
SHAPES = [(6, 5000), (3, 50304), (1, 77)]


def relative_errors(
    device: str, dtype: torch.dtype, rows: int, vocab: int, skip_every: int = 0
) -> tuple[float, float]:
    """|loss - reference| / reference, and ||grad - reference grad|| / ||reference grad||; with
    `skip_every`, that many rows' first and every skip_every-th after it have the target -100,
    which the loss skips (a prompt's tokens in instruction tuning)."""
    import kernels

    logits = (torch.randn(rows, vocab, device=device) * 4).to(dtype).requires_grad_()
    assert kernels.usable(logits)
    targets = torch.randint(0, vocab, (rows,), device=device)
    if skip_every:
        targets[::skip_every] = -100
    loss = kernels.cross_entropy(logits, targets)
    (loss * 0.5).backward()  # an incoming gradient other than one must scale the result
    reference_logits = logits.detach().double().requires_grad_()
    reference = F.cross_entropy(reference_logits, targets)
    (reference * 0.5).backward()
    grad_error = (logits.grad.double() - reference_logits.grad).norm() / reference_logits.grad.norm()
    return abs(loss.item() - reference.item()) / reference.item(), grad_error.item()


def check_shapes(device: str) -> None:
    for dtype in (torch.float32, torch.bfloat16):
        for (rows, vocab), skip_every in [*((shape, 0) for shape in SHAPES), (SHAPES[0], 3)]:
            loss_error, grad_error = relative_errors(device, dtype, rows, vocab, skip_every)
            # The loss is summed in float32 either way; a bf16 gradient is rounded once on output.
            assert loss_error < 1e-5, (dtype, rows, vocab, skip_every, loss_error)
            limit = 1e-5 if dtype == torch.float32 else 1e-2
            assert grad_error < limit, (dtype, rows, vocab, skip_every, grad_error)


# The interpreter stands in for a GPU; where there is one, the tests below run the real kernels (and
# some torch/Triton pairs, such as torch 2.11 with Triton 3.6, cannot wrap an interpreted kernel).
@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is here: the GPU tests run the kernels")
def test_kernels_match_pytorch_in_tritons_interpreter():
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import test_kernels; test_kernels.check_shapes('cpu'); print('checked')"
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(HERE.parent / "src"), str(HERE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("checked")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_kernels_match_pytorch_on_the_gpu():
    check_shapes("cuda")
    loss_error, grad_error = relative_errors("cuda", torch.bfloat16, 8192, 50304)  # a real batch's rows
    assert loss_error < 1e-5 and grad_error < 1e-2, (loss_error, grad_error)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_compiled_step_with_the_kernels_matches_an_eager_step_with_pytorchs_loss(monkeypatch):
    """The kernels survive torch.compile and give the training signal PyTorch's loss gives."""
    import kernels
    import network

    torch.manual_seed(0)
    model = network.GPT(network.GPTConfig(vocab_size=1000, block_size=64, n_layer=2, n_head=2, n_embd=64))
    model = model.cuda()
    tokens = torch.randint(0, 1000, (4, 65), device="cuda")

    def step(step_model) -> tuple[float, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step_model(tokens[:, :-1], tokens[:, 1:])[1]
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()])

    with monkeypatch.context() as patch:
        patch.setattr(kernels, "usable", lambda logits: False)
        eager_loss, eager_grads = step(model)
    compiled_loss, compiled_grads = step(torch.compile(model))
    assert abs(compiled_loss - eager_loss) / eager_loss < 1e-2, json.dumps([eager_loss, compiled_loss])
    assert ((compiled_grads - eager_grads).norm() / eager_grads.norm()).item() < 5e-2
