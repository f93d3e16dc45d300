"""The layout tagger: LayoutLM's idea, small. Each word is embedded from what it says (its form and
its shape) and where it stands on the page (its box), and a transformer encoder over the page's
words tags each with the field it belongs to.

It takes ((word ids, shape ids, boxes), targets) and returns (logits, loss): one row of tag logits
per word, the interface the trainer, the predictor and the server rely on. `loss` is None without
targets. Pages arrive padded to max_length words; columns that are padding on every page are
cropped before any work is done (except under torch.compile), so the logits may be narrower.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from config import Config
from data import GRID, IGNORE, PAD, UNKNOWN, LayoutPreprocessor


def tagging_loss(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    """Cross-entropy over the words (the targets' last column is the page's index, not a tag)."""
    if targets is None:
        return None
    tags = targets[:, :-1][:, : logits.shape[1]]
    return F.cross_entropy(logits.float().flatten(0, 1), tags.flatten(), ignore_index=IGNORE)


class LayoutTagger(nn.Module):
    """(form + shape + x0, y0, x1, y1, width, height + reading position) embeddings -> n_layer pre-norm
    transformer encoder layers -> a linear head per word. Every word sees the whole page: a total is
    told by the label to its left ("Amount due"), a vendor by standing large at the top."""

    def __init__(
        self,
        vocab_size: int,
        shape_count: int,
        num_tags: int,
        max_length: int,
        n_embd: int = 128,
        n_layer: int = 2,
        n_head: int = 4,
        dropout: float = 0.1,
        word_dropout: float = 0.0,
    ):
        super().__init__()
        self.word_dropout = word_dropout
        self.words = nn.Embedding(vocab_size, n_embd, padding_idx=PAD)
        self.shapes = nn.Embedding(shape_count, n_embd, padding_idx=PAD)
        # LayoutLM's 2-D positions: one table for x (both edges), one for y, one each for size.
        self.x = nn.Embedding(GRID + 1, n_embd)
        self.y = nn.Embedding(GRID + 1, n_embd)
        self.width = nn.Embedding(GRID + 1, n_embd)
        self.height = nn.Embedding(GRID + 1, n_embd)
        self.positions = nn.Embedding(max_length, n_embd)
        self.embedding_norm = nn.LayerNorm(n_embd)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                n_embd, n_head, 4 * n_embd, dropout, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(n_layer)
        )
        self.norm = nn.LayerNorm(n_embd)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(n_embd, num_tags)
        for table in (self.words, self.shapes, self.x, self.y, self.width, self.height, self.positions):
            nn.init.normal_(table.weight, std=0.02)

    def forward(
        self, inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor], targets: torch.Tensor | None = None
    ):
        word_ids, shape_ids, boxes = inputs
        mask = word_ids != PAD
        mask[:, 0] = True  # an empty page is one padding word rather than nothing
        if not torch.compiler.is_compiling():  # a width read from the data would break the graph
            width = int(mask.sum(dim=1).max())
            word_ids, shape_ids, boxes, mask = (
                word_ids[:, :width],
                shape_ids[:, :width],
                boxes[:, :width],
                mask[:, :width],
            )
        if self.training and self.word_dropout:
            # Hide a share of the words' forms (their shape and place stay): the model then finds a
            # vendor it never saw by where it stands, as it must on a new vendor's invoice.
            hidden = (torch.rand(word_ids.shape, device=word_ids.device) < self.word_dropout) & (
                word_ids != PAD
            )
            word_ids = word_ids.masked_fill(hidden, UNKNOWN)
        boxes = boxes.clamp(0, GRID)
        x0, y0, x1, y1 = boxes.unbind(-1)
        x = (
            self.words(word_ids)
            + self.shapes(shape_ids)
            + self.x(x0) + self.y(y0) + self.x(x1) + self.y(y1)
            + self.width((x1 - x0).clamp(0, GRID)) + self.height((y1 - y0).clamp(0, GRID))
            + self.positions(torch.arange(word_ids.shape[1], device=word_ids.device))
        )  # fmt: skip
        x = self.dropout(self.embedding_norm(x))
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~mask)
        logits = self.head(self.dropout(self.norm(x)))
        return logits, tagging_loss(logits, targets)


def build_model(config: Config, preprocessor: LayoutPreprocessor, load_weights: bool = True) -> nn.Module:
    """The tagger for these tags and this vocabulary (`load_weights` is for the kinds that start from
    a pretrained model; this one always starts from random weights)."""
    return LayoutTagger(
        preprocessor.vocab_size,
        len(preprocessor.shapes),
        len(preprocessor.labels),
        preprocessor.max_length,
        config.n_embd,
        config.n_layer,
        config.n_head,
        config.dropout,
        config.word_dropout,
    )


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
