"""The encoder being adapted: a small BERT (network.py's own), or a Hugging Face masked-LM model.

Both take (masked token ids, packed targets) and return (outputs, loss). `loss` is the mean
cross-entropy over the masked tokens (None without targets). In training, outputs is None: only
the loss is needed. In evaluation, outputs holds per text what the metrics add up: the summed
loss over its masked tokens, how many of them the model restored, how many there were, and its
features (the mean of the last layer over its real tokens), which the clause probe reads.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from config import Config
from data import IGNORED, MaskingTokenizer, unpack_targets
from text_encoding import crop_padding


def masked_token_outputs(
    logits: torch.Tensor, token_targets: torch.Tensor, rows: torch.Tensor, batch: int
) -> dict[str, torch.Tensor]:
    """Per text: the summed loss over its masked tokens, the tokens restored, the tokens masked.
    `logits` [masked tokens, vocab] are those of the masked tokens, `rows` the text of each."""
    losses = F.cross_entropy(logits.float(), token_targets, reduction="none")
    hits = (logits.argmax(dim=-1) == token_targets).float()
    sums = torch.zeros(3, batch, device=logits.device)
    for index, values in enumerate((losses, hits, torch.ones_like(losses))):
        sums[index].index_add_(0, rows, values)
    return {"loss_sum": sums[0], "hits": sums[1], "masked": sums[2]}


def unmasked(input_ids: torch.Tensor, token_targets: torch.Tensor) -> torch.Tensor:
    """The texts as they were before masking (the clause probe reads whole texts, as it does when
    serving). `token_targets` may be cut to the batch's real columns."""
    width = token_targets.shape[1]
    return torch.where(token_targets != IGNORED, token_targets, input_ids[:, :width])


def scored_masks(
    model: nn.Module,
    input_ids: torch.Tensor,
    targets: torch.Tensor,
    width: int,
    logits_at: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> tuple[dict[str, torch.Tensor] | None, torch.Tensor]:
    """Either model's (outputs, loss) for a batch whose `width` first columns it read:
    `logits_at(rows, columns)` gives the logits of those tokens. The loss is the mean cross-entropy
    over the masked tokens; in evaluation the outputs add each text's counts and features."""
    token_targets = unpack_targets(targets)[0][:, :width]
    rows, columns = (token_targets != IGNORED).nonzero(as_tuple=True)
    logits, chosen = logits_at(rows, columns), token_targets[rows, columns]
    loss = F.cross_entropy(logits.float(), chosen)
    if model.training:
        return None, loss
    outputs = masked_token_outputs(logits, chosen, rows, input_ids.shape[0])
    return outputs | {"features": model.features(unmasked(input_ids, token_targets))}, loss


def mean_over_tokens(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


class MaskedLanguageModel(nn.Module):
    """BERT's shape, small: token + position embeddings (layer-normed), n_layer pre-norm transformer
    encoder layers, and a prediction head (dense, GELU, layer norm) whose output layer shares the token
    embeddings' weights."""

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        pad_id: int,
        n_embd: int = 128,
        n_layer: int = 4,
        n_head: int = 4,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.pad_id = pad_id
        self.tokens = nn.Embedding(vocab_size, n_embd, padding_idx=pad_id)
        self.positions = nn.Embedding(max_length, n_embd)
        # BERT's layer norm over the summed embeddings. Without it, on the built-in clauses, a small
        # encoder's loss fell from 5.8 to 4.6 in 300 steps; with it, to 3.7.
        self.embedding_norm = nn.LayerNorm(n_embd)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                n_embd, n_head, 4 * n_embd, dropout, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(n_layer)
        )
        self.norm = nn.LayerNorm(n_embd)
        self.transform = nn.Sequential(nn.Linear(n_embd, n_embd), nn.GELU(), nn.LayerNorm(n_embd))
        self.output_bias = nn.Parameter(torch.zeros(vocab_size))
        for embedding in (self.tokens, self.positions):
            nn.init.normal_(embedding.weight, std=0.02)
        with torch.no_grad():
            self.tokens.weight[pad_id].zero_()

    def encode(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The last layer's states [B, T, n_embd] over the real columns, and their mask [B, T]."""
        input_ids, mask = crop_padding(input_ids, self.pad_id)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.dropout(self.embedding_norm(self.tokens(input_ids) + self.positions(positions)))
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~mask)
        return self.norm(x), mask

    def token_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.transform(hidden) @ self.tokens.weight.T + self.output_bias

    def features(self, input_ids: torch.Tensor) -> torch.Tensor:
        hidden, mask = self.encode(input_ids)
        return mean_over_tokens(hidden, mask)

    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor | None = None):
        hidden, _ = self.encode(input_ids)
        if targets is None:
            return self.token_logits(hidden), None
        # Only the masked tokens go through the head: 15% of the vocabulary-wide work.
        return scored_masks(
            self, input_ids, targets, hidden.shape[1], lambda r, c: self.token_logits(hidden[r, c])
        )


class HFMaskedLM(nn.Module):
    """A Hugging Face masked-LM model (BERT, RoBERTa, DistilBERT ...) behind the same interface."""

    def __init__(self, model: nn.Module, pad_id: int):
        super().__init__()
        self.model = model
        self.pad_id = pad_id

    def run(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        input_ids, mask = crop_padding(input_ids, self.pad_id)
        out = self.model(input_ids=input_ids, attention_mask=mask.long(), output_hidden_states=True)
        return input_ids, mask, out.logits, out.hidden_states[-1]

    def features(self, input_ids: torch.Tensor) -> torch.Tensor:
        _, mask, _, hidden = self.run(input_ids)
        return mean_over_tokens(hidden, mask)

    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor | None = None):
        _, _, logits, _ = self.run(input_ids)
        if targets is None:
            return logits, None
        return scored_masks(self, input_ids, targets, logits.shape[1], lambda r, c: logits[r, c])


def build_model(config: Config, preprocessor: MaskingTokenizer, load_weights: bool = True) -> nn.Module:
    """The encoder for this tokenizer. With `load_weights` (a new run) it starts as the original
    encoder: model_name's pretrained weights, or the general-domain encoder that original.py
    trains (once; then cached) when config.pretrained. `load_weights=False` builds the
    architecture only (for loading a trained checkpoint over it)."""
    if config.model_name:
        from transformers import AutoConfig, AutoModelForMaskedLM

        if load_weights and config.pretrained:
            model = AutoModelForMaskedLM.from_pretrained(config.model_name)
        else:
            model = AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(config.model_name))
        model.resize_token_embeddings(preprocessor.vocab_size)
        return HFMaskedLM(model, preprocessor.pad_id)
    model = MaskedLanguageModel(
        preprocessor.vocab_size,
        preprocessor.max_length,
        preprocessor.pad_id,
        config.n_embd,
        config.n_layer,
        config.n_head,
        config.dropout,
    )
    if load_weights and config.pretrained and config.original_steps:
        from original import original_weights

        model.load_state_dict(original_weights(config, preprocessor, model))
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
