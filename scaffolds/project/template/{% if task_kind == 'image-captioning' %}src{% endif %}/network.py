"""The captioner: a convolutional encoder that turns a photo into a grid of feature vectors, and a
small transformer decoder that writes a caption word by word, attending to that grid.

It takes (pixels, reference captions) like every task kind's model and returns (outputs, loss):
while training, the next-word logits of one reference per photo (a different one each time it is
seen) and their loss; in evaluation, the captions it writes itself by beam search (what the
metrics score and the server returns) and the loss over all the references. `loss` is None
without references.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from config import Config, ProjectError
from data import END, PAD, START, CaptionPreprocessor


def conv_block(channels_in: int, channels_out: int) -> nn.Sequential:
    """Halve the resolution, then one more 3x3 convolution: batch norm and GELU after each."""
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.GELU(),
        nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.GELU(),
    )


class Captioner(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        image_size: int,
        max_words: int,
        width: int = 32,
        n_embd: int = 128,
        n_layer: int = 2,
        n_head: int = 4,
        dropout: float = 0.1,
        beam_size: int = 3,
    ):
        super().__init__()
        self.max_words, self.beam_size = max_words, beam_size
        # Four halvings: a 64-pixel photo becomes a 4 x 4 grid of n_embd-wide features.
        self.encoder = nn.Sequential(
            conv_block(3, width), conv_block(width, 2 * width), conv_block(2 * width, 4 * width),
            conv_block(4 * width, n_embd),
        )  # fmt: skip
        cells = math.ceil(image_size / 16) ** 2  # each stride-2 convolution rounds up
        self.grid_positions = nn.Parameter(torch.zeros(1, cells, n_embd))
        self.words = nn.Embedding(vocab_size, n_embd)
        self.word_positions = nn.Embedding(max_words + 2, n_embd)  # <s>, the words, </s>
        layer = nn.TransformerDecoderLayer(
            n_embd, n_head, 4 * n_embd, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, n_layer)
        self.norm = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        self.head.weight = self.words.weight  # tied: one matrix reads and writes words
        nn.init.normal_(self.words.weight, std=0.02)
        nn.init.normal_(self.grid_positions, std=0.02)
        nn.init.normal_(self.word_positions.weight, std=0.02)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Photos [batch, 3, H, W] -> their feature grids as sequences [batch, cells, n_embd]."""
        grid = self.encoder(pixels).flatten(2).transpose(1, 2)
        return grid + self.grid_positions[:, : grid.shape[1]]

    def decode(self, words: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Next-word logits [batch, length, vocabulary] after each of `words` [batch, length]."""
        length = words.shape[1]
        x = self.words(words) + self.word_positions(torch.arange(length, device=words.device))
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=words.device, dtype=x.dtype)
        x = self.decoder(x, memory, tgt_mask=causal, tgt_is_causal=True)
        return self.head(self.norm(x))

    def forward(self, pixels: torch.Tensor, references: torch.Tensor | None = None):
        memory = self.encode(pixels)
        if self.training:
            if references is None:
                raise ValueError("training needs reference captions")
            caption = pick_reference(references)
            logits = self.decode(caption[:, :-1], memory)
            return logits, caption_loss(logits, caption[:, 1:])
        best = self.beam_search(memory)[0][:, 0]
        return best, None if references is None else self.reference_loss(memory, references)

    def reference_loss(self, memory: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """The mean next-word loss over every word of every reference of each photo."""
        total, words = memory.new_zeros((), dtype=torch.float32), 0
        for row in range(references.shape[1]):
            present = references[:, row, 0] == START
            if present.any():
                caption = references[present, row]
                logits = self.decode(caption[:, :-1], memory[present])
                targets = caption[:, 1:]
                total = total + F.cross_entropy(
                    logits.float().transpose(1, 2), targets, ignore_index=PAD, reduction="sum"
                )
                words += int((targets != PAD).sum())
        return total / max(words, 1)

    @torch.compiler.disable  # a loop over a growing sequence: compiled, it would recompile per length
    @torch.no_grad()
    def beam_search(self, memory: torch.Tensor, beam_size: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions [batch, beams, max_words + 1] (word ids, </s>, then padding) best first, and
        their log-probabilities [batch, beams]: the `beam_size` most likely captions of at most
        max_words words, each extended a word at a time, keeping the best of all extensions."""
        beams = beam_size or self.beam_size
        batch, device = memory.shape[0], memory.device
        memory = memory.repeat_interleave(beams, dim=0)
        sequences = torch.full((batch * beams, 1), START, dtype=torch.long, device=device)
        scores = torch.zeros(batch, beams, device=device)
        scores[:, 1:] = float("-inf")  # all beams start as the same empty caption: keep one
        finished = torch.zeros(batch * beams, dtype=torch.bool, device=device)
        for step in range(self.max_words + 1):
            log_probs = self.decode(sequences, memory)[:, -1].float().log_softmax(-1)
            log_probs[:, [PAD, START]] = float("-inf")
            if step == self.max_words:  # out of words: the caption ends here
                log_probs[~finished] = torch.where(
                    torch.arange(log_probs.shape[1], device=device) == END,
                    log_probs[~finished],
                    float("-inf"),
                )
            log_probs[finished] = float("-inf")
            log_probs[finished, PAD] = 0.0  # a finished caption only pads, at no cost
            vocabulary = log_probs.shape[1]
            candidates = (scores.reshape(-1, 1) + log_probs).reshape(batch, beams * vocabulary)
            scores, chosen = candidates.topk(beams, dim=1)
            origin = (torch.arange(batch, device=device)[:, None] * beams + chosen // vocabulary).reshape(-1)
            words = (chosen % vocabulary).reshape(-1, 1)
            sequences = torch.cat([sequences[origin], words], dim=1)
            finished = finished[origin] | (words[:, 0] == END)
            if finished.all():
                break
        return sequences[:, 1:].reshape(batch, beams, -1), scores


def pick_reference(references: torch.Tensor) -> torch.Tensor:
    """One of each photo's references [batch, references, length] at random: [batch, length].
    Every photo has at least one (data.py refuses a photo without a caption)."""
    present = (references[:, :, 0] == START).float()
    choice = torch.multinomial(present, 1)[:, 0]
    return references[torch.arange(references.shape[0], device=references.device), choice]


def caption_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-word cross-entropy over the words (and </s>) of the captions, not the padding."""
    return F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=PAD)


def build_model(config: Config, preprocessor: CaptionPreprocessor, load_weights: bool = True) -> nn.Module:
    """The captioner for this vocabulary. `load_weights` is part of every task kind's signature
    (a trained checkpoint is loaded over the model afterwards)."""
    if config.model_name:
        raise ProjectError(
            "model_name is not supported for image captioning yet: the project trains its own "
            'captioner (set model_name to "")'
        )
    return Captioner(
        preprocessor.vocab_size,
        preprocessor.image_size,
        preprocessor.max_words,
        config.width,
        config.n_embd,
        config.n_layer,
        config.n_head,
        config.dropout,
        config.beam_size,
    )


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
