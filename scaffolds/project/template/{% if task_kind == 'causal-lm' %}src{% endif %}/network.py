"""The language model: a lean GPT-2 (decoder-only transformer), or a Hugging Face causal LM.

Both take (tokens, next tokens) and return (logits, loss), the one interface the trainer, the
predictor and the server rely on; `loss` is None without targets. The GPT is written for speed
as much as for reading: one fused matmul for queries, keys and values, PyTorch's fused
scaled-dot-product attention (flash or cuDNN kernels on recent GPUs) with a causal mask, bias-free
linear layers, input and output embeddings tied, the vocabulary padded to a multiple of 64 so
the largest matmul runs on full tensor-core tiles, a residual stream kept in bf16 under autocast,
a loss computed by hand-written kernels (kernels.py), in training on Hopper and Ada GPUs the
output layer's matmuls in float8 (config float8_head), and for generation a key-value cache, so a
sampled token costs one position's forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.pytorch_utils import Conv1D

import kernels
from config import Config, ProjectError, base_run
from data import Tokenizer


@dataclass
class GPTConfig:
    vocab_size: int  # real tokens; the embedding is padded beyond this
    block_size: int  # longest context
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float = 0.0
    float8_head: bool = False  # train the output layer's matmuls in float8 (kernels.py), where it can run

    @property
    def padded_vocab_size(self) -> int:
        return math.ceil(self.vocab_size / 64) * 64


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss of [N, vocabulary] logits. Where a gradient is wanted and Triton can
    run (a CUDA GPU), the hand-written kernels of kernels.py compute it with the fewest reads of
    the logits; elsewhere (evaluation, CPU) PyTorch's own loss does."""
    if torch.is_grad_enabled() and logits.requires_grad and kernels.usable(logits):
        return kernels.cross_entropy(logits, targets)
    return F.cross_entropy(logits.float(), targets)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)  # q, k and v in one matmul
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        batch, time, channels = x.shape
        q, k, v = self.qkv(x).split(channels, dim=2)
        q, k, v = (
            t.view(batch, time, self.n_head, channels // self.n_head).transpose(1, 2) for t in (q, k, v)
        )
        causal = True
        if cache is not None:
            # A prompt attends causally to itself; each later token, alone, to everything before it.
            causal = cache.length == 0
            if not causal and time > 1:
                raise ValueError("after the prompt, a cached forward pass takes one token at a time")
            k, v = cache.extend(k, v)
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal, dropout_p=dropout)
        return self.proj(y.transpose(1, 2).contiguous().view(batch, time, channels))


class LayerCache:
    """One layer's keys and values of the tokens generated so far, so that sampling a token runs
    the model on that token alone instead of on the whole context again."""

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.keys is None else self.keys.shape[2]

    def extend(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys is not None and self.values is not None:
            keys, values = torch.cat([self.keys, keys], dim=2), torch.cat([self.values, values], dim=2)
        self.keys, self.values = keys, values
        return keys, values


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-norm residual block: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.n_embd, bias=False)
        self.attention = CausalSelfAttention(config)
        self.norm2 = nn.LayerNorm(config.n_embd, bias=False)
        self.mlp = MLP(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.norm1(x), cache))
        return x + self.dropout(self.mlp(self.norm2(x)))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.padded_vocab_size, config.n_embd)
        self.position_embedding = nn.Embedding(config.block_size, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = nn.LayerNorm(config.n_embd, bias=False)
        self.lm_head = nn.Linear(config.n_embd, config.padded_vocab_size, bias=False)
        self.lm_head.weight = self.token_embedding.weight  # tied: one matrix reads and writes tokens
        self.apply(self.init_weights)
        for name, parameter in self.named_parameters():
            if name.endswith("proj.weight"):  # GPT-2: residual projections scaled by depth
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(
        self, tokens: torch.Tensor, targets: torch.Tensor | None = None, cache: list[LayerCache] | None = None
    ):
        """(logits, loss); with a `cache` (generation: see `generate`), the tokens continue the
        ones it holds, and only the last position's logits are computed."""
        start = cache[0].length if cache else 0
        positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        x = self.token_embedding(tokens) + self.position_embedding(positions)
        if torch.is_autocast_enabled(x.device.type):
            # The residual stream in the autocast dtype (bf16) rather than float32: every residual
            # add and layer norm, forward and backward, moves half the bytes (+4% tokens/s on an H200).
            x = x.to(torch.get_autocast_dtype(x.device.type))
        x = self.dropout(x)
        for index, block in enumerate(self.blocks):
            x = block(x, cache[index] if cache else None)
        if cache:
            x = x[:, -1:]  # the next token is all generation wants: one row of logits, not the context's
        x = self.norm(x)
        if targets is not None and self.trains_float8_head(x):
            loss, logits = kernels.float8_linear_cross_entropy(
                x.view(-1, x.shape[-1]), self.lm_head.weight, targets.reshape(-1)
            )
            return logits.view(*x.shape[:-1], -1), loss
        logits = self.lm_head(x)
        if targets is None:
            return logits, None
        loss = cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))
        # Gradients flow through the loss alone. Logits that could take one would make the compiled
        # backward pass build a zero gradient for them: 6.6 GB written and read at batch 64.
        return logits.detach(), loss

    def trains_float8_head(self, hidden: torch.Tensor) -> bool:
        """Whether this step's output layer runs in float8: asked for (config float8_head), a
        gradient wanted for its weight (a LoRA run freezes it), and the kernels able to run."""
        weight = self.lm_head.weight
        return (
            self.config.float8_head
            and torch.is_grad_enabled()
            and weight.requires_grad
            and kernels.float8_usable(hidden.view(-1, hidden.shape[-1]), weight)
        )

    def flops_per_token(self) -> float:
        """Training FLOPs per token by nanoGPT's estimate: 6N for the weights (2N forward, 2N for
        the gradients of the activations, 2N for the weights' own) plus 12 * layers * heads * head
        size * context for attention. A frozen weight (LoRA's base) gets no gradient: 4N."""
        c = self.config
        weights = [p for p in self.parameters() if p is not self.position_embedding.weight]
        trainable = sum(p.numel() for p in weights if p.requires_grad)
        frozen = sum(p.numel() for p in weights if not p.requires_grad)
        return 6 * trainable + 4 * frozen + 12 * c.n_layer * c.n_head * (c.n_embd // c.n_head) * c.block_size


class HFCausalLM(nn.Module):
    """A Hugging Face causal LM (GPT-2, Llama, Qwen ...) behind the same interface."""

    def __init__(self, model: nn.Module, context: int = 0):
        super().__init__()
        self.model = model
        self.context = context  # the tokens each example holds (block_size), for counting FLOPs

    def flops_per_token(self) -> float:
        """Training FLOPs per token as GPT.flops_per_token counts them, from the model's matmuls:
        6 per trained weight, 4 per frozen one (a LoRA base's), each adapter's weights trained,
        plus 12 * layers * width * context for attention. Embedding lookups are no matmuls; a
        tied output layer is counted once, as the matmul it is."""
        weights = {
            id(parameter): parameter
            for module in self.model.modules()
            if isinstance(module, (nn.Linear, Conv1D, LoRALinear))
            for parameter in module.parameters(recurse=False)
            if parameter.dim() == 2
        }.values()
        matmuls = sum((6 if p.requires_grad else 4) * p.numel() for p in weights)
        config = self.model.config
        layers = getattr(config, "num_hidden_layers", None) or config.n_layer
        width = getattr(config, "hidden_size", None) or config.n_embd
        return matmuls + 12 * layers * width * self.context

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.model(input_ids=tokens).logits
        if targets is None:
            return logits, None
        loss = cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))
        return logits.detach(), loss  # as GPT's: gradients flow through the loss alone


class LoRALinear(nn.Module):
    """A frozen linear layer beside a trainable low-rank update of it (LoRA, Hu et al. 2021):
    x W^T + (alpha / rank) x A^T B^T. B starts at zero, so the model starts as the one it adapts,
    and only rank x (in + out) numbers per layer train instead of in x out. The layer is an
    nn.Linear, or a Hugging Face `Conv1D` (GPT-2's), which holds its weight as [in, out]."""

    def __init__(self, base: nn.Module, rank: int, alpha: float):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.transposed = isinstance(base, Conv1D)
        weight: torch.Tensor = base.weight
        out_features, in_features = weight.shape[::-1] if self.transposed else weight.shape
        self.lora_a = nn.Parameter(torch.empty(rank, in_features, dtype=weight.dtype, device=weight.device))
        self.lora_b = nn.Parameter(torch.zeros(out_features, rank, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear initialises its weight
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(x, self.lora_a), self.lora_b) * self.scale

    @torch.no_grad()
    def merged(self) -> nn.Module:
        """The frozen layer with the update folded into its weight, W + (alpha / rank) B A: the
        same function in one matmul (this layer's base weight is changed in place)."""
        update = self.lora_b @ self.lora_a
        self.base.weight.add_(update.T if self.transposed else update, alpha=self.scale)
        return self.base


def add_lora(model: nn.Module, rank: int, alpha: float) -> nn.Module:
    """Freeze `model` and put LoRA adapters beside each of its matmuls but the output layer's: in
    the GPT, every attention and MLP matmul of its blocks; in a Hugging Face model, each linear
    (or GPT-2 Conv1D) layer, as PEFT's "all-linear" target chooses them."""
    model.requires_grad_(False)
    output = model.lm_head if isinstance(model, GPT) else model.model.get_output_embeddings()
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, (nn.Linear, Conv1D)) and child is not output:
                setattr(module, name, LoRALinear(child, rank, alpha))
    # The frozen weights come back from init_from or model_name: a run saves its adapters alone.
    model.frozen_weights_from_source = True
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """`model` with every LoRA adapter folded into the weight beside it, for inference: the same
    outputs at the cost of the model it adapts (4 matmuls a block instead of 12, and no scaling
    and adding of the updates). A model without adapters comes back as it is."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                setattr(module, name, child.merged())
    model.frozen_weights_from_source = False  # the adapters are in the weights now
    return model


def build_model(config: Config, tokenizer: Tokenizer, load_weights: bool = True) -> nn.Module:
    """The model for this tokenizer. `load_weights=False` builds the architecture only (for loading
    a trained checkpoint over it); otherwise a fine-tuning run starts from its `init_from` run's
    weights (a LoRA run's with its adapters merged), or from model_name's pretrained ones. With
    lora_rank, those weights are frozen and adapters beside them train."""
    if not config.model_name:
        model = GPT(
            GPTConfig(
                vocab_size=tokenizer.vocab_size,
                block_size=config.block_size,
                n_layer=config.n_layer,
                n_head=config.n_head,
                n_embd=config.n_embd,
                dropout=config.dropout,
                float8_head=config.float8_head == "true",
            )
        )
        if load_weights and config.init_from:
            from trainer import load_trained_model  # here: the trainer builds its models with this module

            _, _, base, _ = load_trained_model(base_run(config), torch.device("cpu"))
            model.load_state_dict(merge_lora(base).state_dict())  # a LoRA base: its adapters folded in
    else:
        from transformers import AutoConfig, AutoModelForCausalLM

        if load_weights and config.pretrained:
            hugging_face = AutoModelForCausalLM.from_pretrained(config.model_name)
        else:
            hugging_face = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(config.model_name))
        # Learned positions end somewhere (GPT-2's 1024): a longer context would index past them.
        positions = getattr(hugging_face.config, "n_positions", None) or getattr(
            hugging_face.config, "max_position_embeddings", None
        )
        if positions and config.block_size > positions:
            raise ProjectError(
                f"block_size={config.block_size} is longer than the {positions} positions {config.model_name}"
                f" knows: set --set block_size={positions} or less"
            )
        model = HFCausalLM(hugging_face, context=config.block_size)
    return add_lora(model, config.lora_rank, config.lora_alpha) if config.lora_rank else model


@torch.no_grad()
def generate(
    model: nn.Module,
    tokens: list[int],
    *,
    max_new_tokens: int,
    block_size: int,
    vocab_size: int,
    temperature: float = 0.8,
    top_k: int = 50,
    use_cache: bool = True,
) -> Iterator[int]:
    """Sample one token at a time after `tokens` (temperature 0: always the most likely one).

    The GPT keeps each layer's keys and values (`use_cache`), so a token costs one position's
    forward pass, not the whole context's. When the context outgrows block_size, the cache starts
    again from the last half block of it (positions are learned up to block_size only); without
    the cache, and for Hugging Face models, the last block_size tokens are run again every step.
    """
    device = next(model.parameters()).device
    context = torch.tensor([tokens], dtype=torch.long, device=device)
    cache: list[LayerCache] | None = None
    for _ in range(max_new_tokens):
        if not (use_cache and isinstance(model, GPT)):
            logits, _ = model(context[:, -block_size:])
        elif cache is None or cache[0].length >= block_size:
            window = block_size if cache is None else block_size // 2
            cache = [LayerCache() for _ in model.blocks]
            logits, _ = model(context[:, -window:], cache=cache)
        else:
            logits, _ = model(context[:, -1:], cache=cache)
        logits = logits[0, -1, :vocab_size].float()  # padding entries of the vocabulary never win
        if temperature == 0:
            next_token = logits.argmax()
        else:
            logits = logits / temperature
            if top_k:
                cutoff = torch.topk(logits, min(top_k, vocab_size)).values[-1]
                logits = logits.masked_fill(logits < cutoff, float("-inf"))
            next_token = torch.multinomial(logits.softmax(dim=-1), num_samples=1)[0]
        context = torch.cat([context, next_token.view(1, 1)], dim=1)
        yield int(next_token)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Distinct parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
