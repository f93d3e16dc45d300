"""The text classifier: a small transformer encoder over token embeddings, or a Hugging Face model.

Both take (token ids, labels) and return (logits, loss), the one interface the trainer, the
predictor and the server rely on. `loss` is None when no labels are given. Inputs arrive padded
to max_length; columns that are padding in every row are cropped before any work is done.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from config import Config
from data import TextPreprocessor
from text_encoding import HFTextModel, crop_padding, hugging_face_model, layer_depths, mean_over_tokens


def classification_loss(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
    return F.cross_entropy(logits.float(), labels) if labels is not None else None


class TextClassifier(nn.Module):
    """Token (+ position) embeddings -> n_layer pre-norm transformer encoder layers -> the mean
    over real tokens -> a linear head. With n_layer=0 it is a bag of embeddings (fastText)."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        max_length: int,
        pad_id: int,
        n_embd: int = 128,
        n_layer: int = 1,
        n_head: int = 4,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.pad_id = pad_id
        self.tokens = nn.Embedding(vocab_size, n_embd, padding_idx=pad_id)
        self.positions = nn.Embedding(max_length, n_embd) if n_layer else None
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                n_embd, n_head, 4 * n_embd, dropout, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(n_layer)
        )
        self.norm = nn.LayerNorm(n_embd)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(n_embd, num_classes)
        # Small embeddings (GPT-2's 0.02, not PyTorch's 1.0): each step then turns them visibly,
        # which a bag of embeddings needs to learn in a few epochs.
        nn.init.normal_(self.tokens.weight, std=0.02)
        if self.positions is not None:
            nn.init.normal_(self.positions.weight, std=0.02)
        with torch.no_grad():
            self.tokens.weight[pad_id].zero_()

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None):
        logits = self.head(self.dropout(self.features(input_ids)))
        return logits, classification_loss(logits, labels)

    def features(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Each text's encoding below the head: the normed last layer averaged over real tokens."""
        input_ids, mask = crop_padding(input_ids, self.pad_id)
        x = self.tokens(input_ids)
        if self.positions is not None:
            x = x + self.positions(torch.arange(input_ids.shape[1], device=input_ids.device))
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~mask)
        return mean_over_tokens(self.norm(x), mask)

    def layer_depths(self) -> dict[str, int]:
        return layer_depths(self)


def build_model(config: Config, preprocessor: TextPreprocessor, load_weights: bool = True) -> nn.Module:
    """The model for these labels and this tokenizer. `load_weights=False` builds the architecture
    only (for loading a trained checkpoint over it)."""
    labels = preprocessor.labels
    if not config.model_name:
        return TextClassifier(
            preprocessor.vocab_size,
            len(labels),
            preprocessor.max_length,
            preprocessor.pad_id,
            config.n_embd,
            config.n_layer,
            config.n_head,
            config.dropout,
        )

    from transformers import AutoModelForSequenceClassification

    auto_class = AutoModelForSequenceClassification
    model = hugging_face_model(auto_class, config, labels, preprocessor.pad_id, load_weights)
    return HFTextModel(model, preprocessor.pad_id, classification_loss)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
