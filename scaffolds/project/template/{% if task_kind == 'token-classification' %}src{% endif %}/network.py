"""The tagger: a small transformer encoder over word pieces, or a Hugging Face token classifier.

Both take (token ids, token tags) and return (logits, loss): one row of tag logits per token,
the one interface the trainer, the predictor and the server rely on. `loss` is None without tags,
and averages over the tokens that carry one (the first piece of each word). Inputs arrive padded
to max_length; columns that are padding in every row are cropped before any work is done, so the
logits may be narrower than the inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from config import Config
from data import IGNORE, TaggingPreprocessor
from text_encoding import HFTextModel, crop_padding, hugging_face_model


def tagging_loss(logits: torch.Tensor, tags: torch.Tensor | None) -> torch.Tensor | None:
    """Cross-entropy over the tokens that carry a tag; the tags' padding columns the logits lack
    were cropped off the inputs and hold only IGNORE."""
    if tags is None:
        return None
    tags = tags[:, : logits.shape[1]]
    return F.cross_entropy(logits.float().flatten(0, 1), tags.flatten(), ignore_index=IGNORE)


class Tagger(nn.Module):
    """Token + position embeddings -> n_layer pre-norm transformer encoder layers -> a linear head
    per token. Every token sees the whole note (no causal mask): a drug's name is often told by
    what follows it ("20 mg twice daily")."""

    def __init__(
        self,
        vocab_size: int,
        num_tags: int,
        max_length: int,
        pad_id: int,
        n_embd: int = 128,
        n_layer: int = 2,
        n_head: int = 4,
        dropout: float = 0.1,
        unk_id: int | None = None,
        token_dropout: float = 0.0,
    ):
        super().__init__()
        self.pad_id = pad_id
        self.unk_id = unk_id
        self.token_dropout = token_dropout if unk_id is not None else 0.0
        self.tokens = nn.Embedding(vocab_size, n_embd, padding_idx=pad_id)
        self.positions = nn.Embedding(max_length, n_embd)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                n_embd, n_head, 4 * n_embd, dropout, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(n_layer)
        )
        self.norm = nn.LayerNorm(n_embd)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(n_embd, num_tags)
        nn.init.normal_(self.tokens.weight, std=0.02)
        nn.init.normal_(self.positions.weight, std=0.02)
        with torch.no_grad():
            self.tokens.weight[pad_id].zero_()

    def forward(self, input_ids: torch.Tensor, tags: torch.Tensor | None = None):
        input_ids, mask = crop_padding(input_ids, self.pad_id)
        if self.training and self.token_dropout:
            # Hide a share of the word pieces behind the unknown token: the model then learns to
            # tell an entity by the words around it too, as it must for a name it never saw.
            hidden = (torch.rand(input_ids.shape, device=input_ids.device) < self.token_dropout) & mask
            input_ids = input_ids.masked_fill(hidden, self.unk_id)
        x = self.tokens(input_ids) + self.positions(torch.arange(input_ids.shape[1], device=input_ids.device))
        x = self.dropout(x)
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~mask)
        logits = self.head(self.dropout(self.norm(x)))
        return logits, tagging_loss(logits, tags)


def build_model(config: Config, preprocessor: TaggingPreprocessor, load_weights: bool = True) -> nn.Module:
    """The model for these tags and this tokenizer. `load_weights=False` builds the architecture
    only (for loading a trained checkpoint over it)."""
    labels = preprocessor.labels
    if not config.model_name:
        return Tagger(
            preprocessor.vocab_size,
            len(labels),
            preprocessor.max_length,
            preprocessor.pad_id,
            config.n_embd,
            config.n_layer,
            config.n_head,
            config.dropout,
            preprocessor.tokenizer.unk_token_id,
            config.token_dropout,
        )

    from transformers import AutoModelForTokenClassification

    model = hugging_face_model(
        AutoModelForTokenClassification, config, labels, preprocessor.pad_id, load_weights
    )
    return HFTextModel(model, preprocessor.pad_id, tagging_loss)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
