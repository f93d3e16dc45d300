"""The GPT's MLP with GELU inside cuBLASLt's matmul epilogues (GPU): a lever for issue 8.

What the compiled MLP does now, per layer, at batch B (M = B x 1024 rows, hidden 3072): the first
matmul writes the pre-activation; a Triton kernel reads it and writes GELU of it; the backward
pass's kernel reads the pre-activation and the activation's gradient, and writes the
pre-activation's gradient and the recomputed activation (for the second weight's gradient). That
is six passes over an M x 3072 bf16 tensor (403 MB at b64), about 7.5 ms of a 111 ms b64 step.

Here cuBLASLt does the GELU in the matmuls' epilogues, as Transformer Engine does:
- forward, CUBLASLT_EPILOGUE_GELU_AUX: one matmul writes GELU(x W1^T) and, as its auxiliary output,
  x W1^T (saved for the backward pass);
- backward, CUBLASLT_EPILOGUE_DGELU: the matmul grad_y W2 multiplies its result by GELU'(aux) as
  it writes it, so the pre-activation's gradient comes straight out of the matmul.
Two passes instead of six (the auxiliary write and read), plus the saved activation's memory.
Prediction: -1.2 GB of traffic a layer at b64, about -5 ms of a 111 ms step (-4%), if the
epilogue matmuls run at the plain ones' speed.

    python benchmarks/gelu_epilogue.py [--rows 32768]   # build, check against float64, time

Needs a CUDA build of PyTorch with nvcc and ninja (the extension is compiled on first use).
"""

import argparse
from functools import cache
from pathlib import Path

SOURCE = r"""
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <cublasLt.h>
#include <algorithm>

#define LT_CHECK(call)                                                                   \
  do {                                                                                   \
    cublasStatus_t status_ = (call);                                                     \
    TORCH_CHECK(status_ == CUBLAS_STATUS_SUCCESS, #call " failed: status ", int(status_)); \
  } while (0)

namespace {
constexpr size_t kWorkspaceBytes = 32u << 20;  // what cuBLAS asks for on Hopper
constexpr int kMaxAlgorithms = 16;
int chosen[2] = {0, 0};  // which of cuBLASLt's heuristic answers to run: [GELU_AUX, DGELU]
int offered[2] = {0, 0};  // how many it offered at the last call

// D (m x n, column-major, bf16) = op(A) (m x k) * B (k x n), then `epilogue`, whose auxiliary
// m x n matrix is written (GELU_AUX: the pre-activation) or read (DGELU).
void matmul_with_epilogue(const at::Tensor& a, bool transpose_a, const at::Tensor& b, at::Tensor& d,
                          const at::Tensor& aux, int64_t m, int64_t n, int64_t k,
                          cublasLtEpilogue_t epilogue) {
  cublasLtHandle_t handle = at::cuda::getCurrentCUDABlasLtHandle();
  cublasLtMatmulDesc_t desc;
  LT_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t op_a = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  LT_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  LT_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
  void* aux_pointer = aux.data_ptr();
  int64_t aux_ld = m;
  LT_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux_pointer,
                                          sizeof(aux_pointer)));
  LT_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld,
                                          sizeof(aux_ld)));
  cublasLtMatrixLayout_t layout_a, layout_b, layout_d;
  LT_CHECK(cublasLtMatrixLayoutCreate(&layout_a, CUDA_R_16BF, transpose_a ? k : m, transpose_a ? m : k,
                                      transpose_a ? k : m));
  LT_CHECK(cublasLtMatrixLayoutCreate(&layout_b, CUDA_R_16BF, k, n, k));
  LT_CHECK(cublasLtMatrixLayoutCreate(&layout_d, CUDA_R_16BF, m, n, m));
  cublasLtMatmulPreference_t preference;
  LT_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  size_t workspace_bytes = kWorkspaceBytes;
  LT_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                &workspace_bytes, sizeof(workspace_bytes)));
  cublasLtMatmulHeuristicResult_t heuristics[kMaxAlgorithms];
  int found = 0;
  LT_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, desc, layout_a, layout_b, layout_d, layout_d, preference,
                                          kMaxAlgorithms,
                                          heuristics, &found));
  TORCH_CHECK(found > 0, "cuBLASLt offers no algorithm for this epilogue and shape");
  int kind = epilogue == CUBLASLT_EPILOGUE_DGELU ? 1 : 0;
  offered[kind] = found;
  const cublasLtMatmulAlgo_t* algorithm = &heuristics[std::min(chosen[kind], found - 1)].algo;
  at::Tensor workspace = at::empty({int64_t(workspace_bytes)}, a.options().dtype(at::kByte));
  float alpha = 1.0f, beta = 0.0f;
  LT_CHECK(cublasLtMatmul(handle, desc, &alpha, a.data_ptr(), layout_a, b.data_ptr(), layout_b, &beta,
                          d.data_ptr(), layout_d, d.data_ptr(), layout_d, algorithm,
                          workspace.data_ptr(), workspace_bytes, at::cuda::getCurrentCUDAStream()));
  cublasLtMatmulPreferenceDestroy(preference);
  cublasLtMatrixLayoutDestroy(layout_a);
  cublasLtMatrixLayoutDestroy(layout_b);
  cublasLtMatrixLayoutDestroy(layout_d);
  cublasLtMatmulDescDestroy(desc);
}

void check_operand(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_cuda() && t.scalar_type() == at::kBFloat16 && t.dim() == 2 && t.is_contiguous(), name,
              " must be a contiguous 2-D bf16 CUDA tensor");
}
}  // namespace

// Picks the `index`th of cuBLASLt's answers for GELU_AUX (kind 0) or DGELU (kind 1); returns how
// many it offered last time.
int64_t choose_algorithm(int64_t kind, int64_t index) {
  chosen[kind] = int(index);
  return offered[kind];
}

// x (rows, in), weight (out, in), both row-major: returns GELU(x weight^T) and x weight^T.
std::vector<at::Tensor> linear_gelu(const at::Tensor& x, const at::Tensor& weight) {
  check_operand(x, "x");
  check_operand(weight, "weight");
  int64_t rows = x.size(0), in = x.size(1), out = weight.size(0);
  at::Tensor activated = at::empty({rows, out}, x.options());
  at::Tensor pre = at::empty({rows, out}, x.options());
  // Row-major (rows, out) is column-major (out, rows) = weight (out, in) * x^T (in, rows).
  matmul_with_epilogue(weight, true, x, activated, pre, out, rows, in, CUBLASLT_EPILOGUE_GELU_AUX);
  return {activated, pre};
}

// grad (rows, out), weight (out, hidden), pre (rows, hidden): returns (grad weight) * GELU'(pre).
at::Tensor matmul_gelu_backward(const at::Tensor& grad, const at::Tensor& weight, const at::Tensor& pre) {
  check_operand(grad, "grad");
  check_operand(weight, "weight");
  check_operand(pre, "pre");
  int64_t rows = grad.size(0), out = grad.size(1), hidden = weight.size(1);
  TORCH_CHECK(pre.size(0) == rows && pre.size(1) == hidden, "pre must be (rows, hidden)");
  at::Tensor result = at::empty({rows, hidden}, grad.options());
  // Column-major (hidden, rows) = weight^T as stored (hidden, out) * grad^T (out, rows).
  matmul_with_epilogue(weight, false, grad, result, pre, hidden, rows, out, CUBLASLT_EPILOGUE_DGELU);
  return result;
}
"""


@cache
def extension():
    from torch.utils.cpp_extension import load_inline

    return load_inline(
        name="ccpt_gelu_epilogue",
        cpp_sources=SOURCE,
        with_cuda=True,
        functions=["linear_gelu", "matmul_gelu_backward", "choose_algorithm"],
        extra_ldflags=["-lcublasLt"],
        extra_cflags=["-O2"],
        verbose=False,
    )


@cache
def operators():
    """The two epilogue matmuls as PyTorch operators (opaque to torch.compile), and the MLP."""
    import torch

    @torch.library.custom_op("ccpt_bench::linear_gelu", mutates_args=(), device_types="cuda")
    def linear_gelu(x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        activated, pre = extension().linear_gelu(x, weight)
        return activated, pre

    @linear_gelu.register_fake
    def _(x, weight):
        shape = (x.shape[0], weight.shape[0])
        return x.new_empty(shape), x.new_empty(shape)

    @torch.library.custom_op("ccpt_bench::matmul_gelu_backward", mutates_args=(), device_types="cuda")
    def matmul_gelu_backward(grad: torch.Tensor, weight: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        return extension().matmul_gelu_backward(grad, weight, pre)

    @matmul_gelu_backward.register_fake
    def _(grad, weight, pre):
        return pre.new_empty(pre.shape)

    class GeluMLP(torch.autograd.Function):
        """proj(GELU_tanh(fc(x))) on bf16 operands, GELU done in the matmuls' epilogues."""

        @staticmethod
        def forward(ctx, x, fc_weight, proj_weight):
            rows = x.reshape(-1, x.shape[-1])
            activated, pre = linear_gelu(rows, fc_weight)
            ctx.save_for_backward(rows, fc_weight, proj_weight, activated, pre)
            return (activated @ proj_weight.t()).view(*x.shape[:-1], proj_weight.shape[0])

        @staticmethod
        def backward(ctx, grad):
            rows, fc_weight, proj_weight, activated, pre = ctx.saved_tensors
            flat_grad = grad.reshape(-1, grad.shape[-1]).contiguous()
            grad_pre = matmul_gelu_backward(flat_grad, proj_weight, pre)
            grad_x = (grad_pre @ fc_weight).view(*grad.shape[:-1], fc_weight.shape[1])
            return grad_x, grad_pre.t() @ rows, flat_grad.t() @ activated

    def gelu_mlp(x, fc_weight, proj_weight):
        bf16 = torch.bfloat16
        return GeluMLP.apply(x.to(bf16), fc_weight.to(bf16), proj_weight.to(bf16))

    return gelu_mlp


def choose_algorithms_from_environment() -> None:
    """CCPT_GELU_AUX_ALGO / CCPT_DGELU_ALGO: which heuristic answer the lever's matmuls run."""
    import os

    for kind, name in enumerate(("CCPT_GELU_AUX_ALGO", "CCPT_DGELU_ALGO")):
        extension().choose_algorithm(kind, int(os.environ.get(name, "0")))


def mlp_forward(self, x):
    """MLP.forward of the generated network.py with GELU in the epilogues (causal_lm_levers' ltgelu)."""
    return operators()(x, self.fc.weight, self.proj.weight)


def relative_error(value, reference) -> float:
    return ((value.double() - reference).norm() / reference.norm()).item()


def check(rows: int = 4096, width: int = 768, gelu_mlp=None) -> dict[str, float]:
    """Output and the three gradients of `gelu_mlp(x, fc_weight, proj_weight)` (this file's MLP
    unless given) against float64 PyTorch on fresh random inputs."""
    import torch
    import torch.nn.functional as F

    gelu_mlp = gelu_mlp or operators()
    x = torch.randn(2, rows // 2, width, device="cuda", requires_grad=True)
    fc = (torch.randn(4 * width, width, device="cuda") * width**-0.5).requires_grad_()
    proj = (torch.randn(width, 4 * width, device="cuda") * (4 * width) ** -0.5).requires_grad_()
    upstream = torch.randn(2, rows // 2, width, device="cuda")
    out = gelu_mlp(x, fc, proj)
    out.backward(upstream)
    ref_inputs = [t.detach().to(torch.bfloat16).double().requires_grad_() for t in (x, fc, proj)]
    ref = F.linear(F.gelu(F.linear(ref_inputs[0], ref_inputs[1]), approximate="tanh"), ref_inputs[2])
    ref.backward(upstream.double())
    errors = {"output": relative_error(out, ref.detach())}
    for name, tensor, ref_tensor in zip(
        ("grad_x", "grad_fc", "grad_proj"), (x, fc, proj), ref_inputs, strict=True
    ):
        errors[name] = relative_error(tensor.grad, ref_tensor.grad)
    return errors


def time_mlp(rows: int, width: int = 768) -> dict[str, float]:
    """Median ms of the MLP's forward and backward: compiled PyTorch against the epilogue version."""
    import torch
    import torch.nn.functional as F
    from triton.testing import do_bench

    gelu_mlp = operators()

    def plain(x, fc, proj):
        return F.linear(F.gelu(F.linear(x, fc), approximate="tanh"), proj)

    x = torch.randn(rows, width, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    fc = torch.randn(4 * width, width, device="cuda", requires_grad=True)
    proj = torch.randn(width, 4 * width, device="cuda", requires_grad=True)
    upstream = torch.randn(rows, width, device="cuda", dtype=torch.bfloat16)
    results = {}
    variants = (("compiled PyTorch", torch.compile(plain)), ("GELU in epilogues", torch.compile(gelu_mlp)))
    for name, function in variants:

        def step(function=function):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = function(x, fc, proj)
            out.backward(upstream)
            x.grad = fc.grad = proj.grad = None

        results[name] = do_bench(step, warmup=200, rep=1000, return_mode="median")
    a = torch.randn(rows, width, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(4 * width, width, device="cuda", dtype=torch.bfloat16)
    results["plain matmul x W1^T"] = do_bench(lambda: a @ w.t(), return_mode="median")
    results["GELU_AUX matmul x W1^T"] = do_bench(lambda: extension().linear_gelu(a, w), return_mode="median")
    for index in range(1, 16):
        extension().choose_algorithm(0, index)
        ms = do_bench(lambda: extension().linear_gelu(a, w), return_mode="median")
        if extension().choose_algorithm(0, index) <= index:
            break
        results[f"GELU_AUX matmul, answer {index}"] = ms
    extension().choose_algorithm(0, 0)
    g = torch.randn(rows, width, device="cuda", dtype=torch.bfloat16)
    w2 = torch.randn(width, 4 * width, device="cuda", dtype=torch.bfloat16)
    pre = torch.randn(rows, 4 * width, device="cuda", dtype=torch.bfloat16)
    results["plain matmul grad W2"] = do_bench(lambda: g @ w2, return_mode="median")
    results["DGELU matmul grad W2"] = do_bench(
        lambda: extension().matmul_gelu_backward(g, w2, pre), return_mode="median"
    )
    for index in range(1, 16):
        extension().choose_algorithm(1, index)
        ms = do_bench(lambda: extension().matmul_gelu_backward(g, w2, pre), return_mode="median")
        if extension().choose_algorithm(1, index) <= index:
            break
        results[f"DGELU matmul, answer {index}"] = ms
    extension().choose_algorithm(1, 0)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profiler:
        a @ w.t()
        extension().linear_gelu(a, w)
        g @ w2
        extension().matmul_gelu_backward(g, w2, pre)
        torch.cuda.synchronize()
    for event in profiler.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            print(f"kernel: {event.name[:110]}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=32768, help="rows of the timed MLP (b32 x 1024)")
    parser.add_argument("--env-file", type=Path, help="write the fastest answers as shell exports here")
    args = parser.parse_args()
    for name, error in check().items():
        print(f"relative error against float64, {name}: {error:.2e}", flush=True)
    results = time_mlp(args.rows)
    for name, ms in results.items():
        print(f"{name:<28} {ms:8.3f} ms  (rows {args.rows})", flush=True)
    if args.env_file:
        exports = []
        for variable, prefix, first in (
            ("CCPT_GELU_AUX_ALGO", "GELU_AUX matmul, answer ", "GELU_AUX matmul x W1^T"),
            ("CCPT_DGELU_ALGO", "DGELU matmul, answer ", "DGELU matmul grad W2"),
        ):
            answers = {0: results[first]}
            answers |= {int(k.removeprefix(prefix)): v for k, v in results.items() if k.startswith(prefix)}
            exports.append(f"export {variable}={min(answers, key=answers.__getitem__)}")
        args.env_file.write_text("\n".join(exports) + "\n")
        print(*exports, sep="\n")


if __name__ == "__main__":
    main()
