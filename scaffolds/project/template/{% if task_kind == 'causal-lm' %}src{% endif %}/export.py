"""A trained run as a Hugging Face model folder, for the tools that read one: transformers'
`AutoModelForCausalLM.from_pretrained(folder)` and `pipeline("text-generation", model=folder)`,
the Hub (`push_to_hub`), and the servers that load that format.

The lean GPT of network.py is GPT-2's architecture without biases, so it is written as a
`GPT2LMHeadModel` whose biases are zero: the same logits for the same tokens. What GPT-2 writes
differently: its `Conv1D` layers hold the transpose of a linear layer's weight, and it knows only
the real vocabulary (the rows network.py pads it with are dropped). A LoRA run is written with its
adapters merged (the predictor loads it so), a Hugging Face model as it is.

With the model go the tokenizer (the byte tokenizer as a byte-level BPE without merges: the same
ids), the chat template of a run tuned on instructions (`tokenizer.apply_chat_template`), and the
run's sampling defaults as its generation config.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import (
    GenerationConfig,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from config import ProjectError
from data import ByteTokenizer, PretrainedTokenizer
from instructions import ASSISTANT
from network import GPT, HFCausalLM
from predictor import Predictor

# The chat template of instructions.py in Hugging Face's form (Jinja), kept beside this file.
CHAT_TEMPLATE = Path(__file__).with_name("chat_template.j2")


def export_run(run_dir: Path, output: Path, card: str = "") -> dict[str, Any]:
    """Write run_dir's model, tokenizer and generation settings to the folder `output` (an earlier
    export there is replaced), and `card` as its README.md (the model card the Hub shows); what
    was written (for `runner.py export`)."""
    if output.exists() and not output.is_dir():
        raise ProjectError(f"{output} is a file, not a folder: give another --output")
    if output.is_dir() and any(output.iterdir()) and not (output / "config.json").is_file():
        raise ProjectError(f"{output} holds files other than an exported model: give another --output")
    predictor = Predictor(run_dir, device="cpu")
    tokenizer = hugging_face_tokenizer(predictor.tokenizer)
    if predictor.chat:
        with_chat_template(tokenizer)
    model: PreTrainedModel
    if isinstance(predictor.model, HFCausalLM):
        model, context = predictor.model.model, None  # its own positions, as it came
    else:
        model = gpt2_of(predictor.model, predictor.tokenizer.vocab_size, tokenizer.eos_token_id)
        context = predictor.config.block_size  # learned positions: a longer input has none
    model.generation_config = generation_config(predictor, tokenizer)
    writers: list[Callable[[Path], object]] = [model.save_pretrained, tokenizer.save_pretrained]
    if card:
        writers.append(lambda folder: (folder / "README.md").write_text(card))
    write_whole(output, writers)
    return {
        "run": run_dir.name,
        "path": str(output),
        "architecture": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "bytes": sum(f.stat().st_size for f in output.iterdir() if f.is_file()),
        "chat": predictor.chat,
        "context": context,
        "card": bool(card),
    }


def write_whole(output: Path, writers: list[Callable[[Path], object]]) -> None:
    """Let each writer fill a new folder beside `output`, then put it in `output`'s place: an
    earlier export there is replaced whole (none of its files left to mix with the new ones, such
    as a chat template beside a plain model), and an interrupted export leaves it as it was."""
    output.parent.mkdir(parents=True, exist_ok=True)
    # mkdir, not tempfile.mkdtemp: the folder keeps the umask's mode (mkdtemp's 0700 would hide the
    # export from a server running as another user).
    staging = output.with_name(f".{output.name}.{uuid.uuid4().hex}")
    staging.mkdir()
    try:
        for write in writers:
            write(staging)
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@torch.no_grad()
def gpt2_of(model: GPT, vocab_size: int, end_token: int | None) -> GPT2LMHeadModel:
    """The GPT as transformers' GPT-2, its biases zero, over the `vocab_size` real tokens."""
    c = model.config
    gpt2 = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=vocab_size,
            n_positions=c.block_size,
            n_embd=c.n_embd,
            n_layer=c.n_layer,
            n_head=c.n_head,
            activation_function="gelu_pytorch_tanh",  # network.MLP's F.gelu(approximate="tanh")
            resid_pdrop=c.dropout,
            embd_pdrop=c.dropout,
            attn_pdrop=c.dropout,
            layer_norm_epsilon=1e-5,  # nn.LayerNorm's
            tie_word_embeddings=True,
            bos_token_id=end_token,
            eos_token_id=end_token,
        )
    ).eval()
    for name, parameter in gpt2.named_parameters():
        if name.endswith(".bias"):
            parameter.zero_()
    body = gpt2.transformer
    body.wte.weight.copy_(model.token_embedding.weight[:vocab_size])  # lm_head is tied to it
    body.wpe.weight.copy_(model.position_embedding.weight)
    for block, layer in zip(model.blocks, body.h, strict=True):
        layer.ln_1.weight.copy_(block.norm1.weight)
        layer.attn.c_attn.weight.copy_(block.attention.qkv.weight.T)  # Conv1D: [in, out]
        layer.attn.c_proj.weight.copy_(block.attention.proj.weight.T)
        layer.ln_2.weight.copy_(block.norm2.weight)
        layer.mlp.c_fc.weight.copy_(block.mlp.fc.weight.T)
        layer.mlp.c_proj.weight.copy_(block.mlp.proj.weight.T)
    body.ln_f.weight.copy_(model.norm.weight)
    return gpt2


def hugging_face_tokenizer(tokenizer: ByteTokenizer | PretrainedTokenizer) -> PreTrainedTokenizerFast:
    if isinstance(tokenizer, PretrainedTokenizer):
        return tokenizer.tokenizer
    return byte_tokenizer()


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """data.ByteTokenizer for transformers: byte-level BPE with one token per byte and no merges,
    so byte b is token b and any text round-trips."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocabulary = {character: byte for byte, character in byte_characters().items()}
    tokenizer = Tokenizer(models.BPE(vocab=vocabulary, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer)


def byte_characters() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte, as byte-level BPE vocabularies write bytes: a
    printable Latin-1 byte stands for itself, the others for the characters from U+0100 up."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]  # "!".."~", "¡".."¬", "®".."ÿ"
    others = (byte for byte in range(256) if byte not in printable)
    return {byte: chr(byte) for byte in printable} | {byte: chr(256 + n) for n, byte in enumerate(others)}


def with_chat_template(tokenizer: PreTrainedTokenizerFast) -> None:
    """Give `tokenizer` the chat template, and tokenize a conversation as training did: the
    assistant's marker on its own (data.prompt_tokens), so that no token spans it and the
    instruction or the reply beside it. Without that, byte-level BPE can merge the bytes either
    side of the marker, and the model would read ids it never saw in training."""
    from tokenizers import Regex, pre_tokenizers

    backend = tokenizer.backend_tokenizer
    marker = pre_tokenizers.Split(Regex(re.escape(ASSISTANT)), behavior="isolated")
    before = backend.pre_tokenizer
    backend.pre_tokenizer = marker if before is None else pre_tokenizers.Sequence([marker, before])
    tokenizer.chat_template = CHAT_TEMPLATE.read_text()


def generation_config(predictor: Predictor, tokenizer: PreTrainedTokenizerFast) -> GenerationConfig:
    """The run's sampling defaults, as `runner.py predict` applies them: greedy for a run tuned on
    instructions (a reply ends at the end marker), else temperature 0.8 among the 50 likeliest."""
    end = tokenizer.eos_token_id
    settings: dict[str, Any] = {"eos_token_id": end, "pad_token_id": end}
    if predictor.chat:
        # The end marker is several tokens, so it cannot be the end-of-sequence token: generation
        # stops at it when asked, `stop_strings=[END]` (pipelines: `stop_sequence=END`).
        settings |= {"do_sample": False}
    else:
        settings |= {"do_sample": True, "temperature": predictor.default_temperature, "top_k": 50}
    return GenerationConfig(**settings)
