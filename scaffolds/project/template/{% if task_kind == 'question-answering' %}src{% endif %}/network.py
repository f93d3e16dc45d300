"""The reader: a small transformer encoder over question and passage, or a Hugging Face model for
question answering (BERT, DistilBERT, RoBERTa ...).

Both take (token ids, window targets) and return (logits, loss): per token a start and an end
logit ([batch, tokens, 2]), the one interface the trainer, the predictor and the server rely on.
`loss` is None without targets; else the mean of the start and end cross-entropies, position 0
([CLS]) standing for "no answer in this window". Inputs arrive padded to max_length; columns
that are padding in every row are cropped before any work is done, so the logits may be
narrower than the inputs, and padding positions get a logit no answer can come from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from config import Config
from data import END, START, ReadingPreprocessor
from text_encoding import HFTextModel, crop_padding, hugging_face_model

NOT_AN_ANSWER = -1e4  # the logit of padding: far below any real one, and finite in bf16


def span_loss(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    """Mean cross-entropy of the start and the end position over each window's tokens."""
    if targets is None:
        return None
    logits = logits.float()
    start = F.cross_entropy(logits[..., 0], targets[:, START])
    end = F.cross_entropy(logits[..., 1], targets[:, END])
    return (start + end) / 2


class Reader(nn.Module):
    """Token, position, segment (question or passage) and question-match embeddings -> n_layer
    pre-norm transformer encoder layers -> a start and an end logit per token. Every token sees
    the whole window: an answer is found by matching the passage against the question.

    The question-match embedding marks each passage token that also occurs in the question
    (DrQA's exact-match feature). Attention can learn that matching by itself, but a model
    trained from scratch first spends hundreds of steps answering "no answer" to everything, and
    how many varied with the seed and the machine (one run of the default settings passed the
    spec, a run with another seed stalled below it); the mark gives it the match from the first
    step."""

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        pad_id: int,
        sep_id: int,
        n_embd: int = 128,
        n_layer: int = 3,
        n_head: int = 4,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.pad_id, self.sep_id = pad_id, sep_id
        self.tokens = nn.Embedding(vocab_size, n_embd, padding_idx=pad_id)
        self.positions = nn.Embedding(max_length, n_embd)
        self.segments = nn.Embedding(2, n_embd)
        self.matches = nn.Embedding(2, n_embd)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                n_embd, n_head, 4 * n_embd, dropout, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(n_layer)
        )
        self.norm = nn.LayerNorm(n_embd)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(n_embd, 2)
        for table in (self.tokens, self.positions, self.segments, self.matches):
            nn.init.normal_(table.weight, std=0.02)
        with torch.no_grad():
            self.tokens.weight[pad_id].zero_()

    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor | None = None):
        input_ids, mask = crop_padding(input_ids, self.pad_id)
        # Segment 1 from the first [SEP] on: the title and the passage.
        segment = (torch.cumsum((input_ids == self.sep_id).int(), dim=1) > 0).long()
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        question = (segment == 0) & (positions > 0)  # after [CLS], before the first [SEP]
        same_token = input_ids[:, :, None] == input_ids[:, None, :]
        in_question = ((same_token & question[:, None, :]).any(dim=2) & (segment == 1) & mask).long()
        x = self.tokens(input_ids) + self.positions(positions) + self.segments(segment)
        x = self.dropout(x + self.matches(in_question))
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~mask)
        logits = self.head(self.dropout(self.norm(x)))
        logits = logits.masked_fill(~mask.unsqueeze(-1), NOT_AN_ANSWER)
        return logits, span_loss(logits, targets)


class HFReader(HFTextModel):
    """AutoModelForQuestionAnswering's start and end logits as one [batch, tokens, 2] tensor."""

    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor | None = None):
        input_ids, mask = crop_padding(input_ids, self.pad_id)
        output = self.model(input_ids=input_ids, attention_mask=mask.long())
        logits = torch.stack([output.start_logits, output.end_logits], dim=-1)
        logits = logits.masked_fill(~mask.unsqueeze(-1), NOT_AN_ANSWER)
        return logits, self.loss(logits, targets)


def build_model(config: Config, preprocessor: ReadingPreprocessor, load_weights: bool = True) -> nn.Module:
    """The reader for this tokenizer. `load_weights=False` builds the architecture only (for
    loading a trained checkpoint over it)."""
    if not config.model_name:
        return Reader(
            preprocessor.vocab_size,
            preprocessor.max_length,
            preprocessor.pad_id,
            preprocessor.sep_id,
            config.n_embd,
            config.n_layer,
            config.n_head,
            config.dropout,
        )

    from transformers import AutoModelForQuestionAnswering

    model = hugging_face_model(
        AutoModelForQuestionAnswering, config, preprocessor.labels, preprocessor.pad_id, load_weights
    )
    return HFReader(model, preprocessor.pad_id, span_loss)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
