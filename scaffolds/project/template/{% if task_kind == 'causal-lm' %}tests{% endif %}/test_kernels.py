"""The Triton loss kernels (src/kernels.py) against PyTorch's cross-entropy in float64, and the
float8 output layer around them against the same in float64 and in the GPT against its bf16 path.

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

from trainer import has_float8_tensor_cores

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


# (rows, width, vocabulary): multiples of 16, as float8 matmuls need; the second fills neither the
# gradient kernel's 64-row nor its 128-column tiles.
FLOAT8_SHAPES = [(128, 64, 1024), (48, 32, 336)]


def float8_errors(device: str, rows: int, width: int, vocab: int) -> dict[str, float]:
    """Relative errors of the float8 output layer's loss, logits and two gradients against float64,
    on layer-normed hidden states, with every fifth target skipped."""
    import kernels

    torch.manual_seed(0)
    hidden = F.layer_norm(torch.randn(rows, width, device=device), (width,)).requires_grad_()
    weight = (torch.randn(vocab, width, device=device) / width**0.5).requires_grad_()
    targets = torch.randint(0, vocab, (rows,), device=device)
    targets[::5] = -100
    assert kernels.float8_usable(hidden, weight)
    loss, logits = kernels.float8_linear_cross_entropy(hidden, weight, targets)
    (loss * 0.5).backward()
    hidden64 = hidden.detach().double().requires_grad_()
    weight64 = weight.detach().double().requires_grad_()
    logits64 = hidden64 @ weight64.T
    reference = F.cross_entropy(logits64, targets)
    (reference * 0.5).backward()

    def error(got: torch.Tensor, want: torch.Tensor) -> float:
        return ((got.double() - want).norm() / want.norm()).item()

    return {
        "loss": abs(loss.item() - reference.item()) / reference.item(),
        "logits": error(logits, logits64.detach()),
        "grad_hidden": error(hidden.grad, hidden64.grad),
        "grad_weight": error(weight.grad, weight64.grad),
    }


def check_float8(device: str) -> None:
    # e4m3 keeps 3 bits of mantissa and e5m2 2: a few percent per value, less once summed.
    for rows, width, vocab in FLOAT8_SHAPES:
        errors = float8_errors(device, rows, width, vocab)
        assert errors["loss"] < 1e-2 and max(errors.values()) < 0.1, (rows, width, vocab, errors)
    check_float8_gpt(device)


def check_float8_gpt(device: str) -> None:
    """A GPT with float8_head trains its output layer in float8, and its loss and gradients are
    the bf16 path's within float8's rounding; evaluation (no gradient) keeps the bf16 path."""
    import network

    def loss_and_grads(float8_head: bool) -> tuple[float, torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        shape = {"vocab_size": 300, "block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 32}
        model = network.GPT(network.GPTConfig(**shape, float8_head=float8_head)).to(device)
        tokens = torch.randint(0, 300, (2, 17), device=device)
        logits, loss = model(tokens[:, :-1], tokens[:, 1:])
        assert logits.shape == (2, 16, 320) and not logits.requires_grad
        loss.backward()
        with torch.no_grad():
            assert model(tokens[:, :-1], tokens[:, 1:])[1].item() == pytest.approx(loss.item(), rel=0.05)
        return loss.item(), model.lm_head.weight.grad, model.blocks[0].mlp.fc.weight.grad

    float8_loss, *float8_grads = loss_and_grads(True)
    bf16_loss, *bf16_grads = loss_and_grads(False)
    assert abs(float8_loss - bf16_loss) / bf16_loss < 1e-2, (float8_loss, bf16_loss)
    for got, want in zip(float8_grads, bf16_grads, strict=True):
        assert ((got - want).norm() / want.norm()).item() < 0.1


# The interpreter stands in for a GPU; where there is one, the tests below run the real kernels (and
# some torch/Triton pairs, such as torch 2.11 with Triton 3.6, cannot wrap an interpreted kernel).
@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is here: the GPU tests run the kernels")
def test_kernels_match_pytorch_in_tritons_interpreter():
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import test_kernels; test_kernels.check_shapes('cpu'); test_kernels.check_float8('cpu')\n"
        "print('checked')"
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


FLOAT8_GPU = has_float8_tensor_cores()
NO_FLOAT8_GPU = "needs a GPU with float8 tensor cores (Ada, Hopper)"


@pytest.mark.skipif(not FLOAT8_GPU, reason=NO_FLOAT8_GPU)
def test_the_float8_head_matches_pytorch_on_the_gpu():
    check_float8("cuda")
    errors = float8_errors("cuda", 4096, 768, 50304)  # GPT-2's output layer over 4 sequences
    assert errors["loss"] < 1e-2 and max(errors.values()) < 0.1, errors


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(
    "float8_head", [False, pytest.param(True, marks=pytest.mark.skipif(not FLOAT8_GPU, reason=NO_FLOAT8_GPU))]
)
def test_a_compiled_step_with_the_kernels_matches_an_eager_step_with_pytorchs_loss(monkeypatch, float8_head):
    """The kernels (and the float8 output layer) survive torch.compile and give the training
    signal PyTorch's loss gives."""
    import kernels
    import network

    torch.manual_seed(0)
    shape = {"vocab_size": 1000, "block_size": 64, "n_layer": 2, "n_head": 2, "n_embd": 64}
    model = network.GPT(network.GPTConfig(**shape, float8_head=float8_head)).cuda()
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
    grad_error = ((compiled_grads - eager_grads).norm() / eager_grads.norm()).item()
    # The output layer's gradients in float8 are a few percent off (see check_float8).
    assert grad_error < (0.1 if float8_head else 5e-2), grad_error
