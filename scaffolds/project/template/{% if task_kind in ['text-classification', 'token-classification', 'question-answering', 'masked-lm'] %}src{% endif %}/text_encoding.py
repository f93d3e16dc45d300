"""What the two text tasks share: a WordPiece tokenizer trained here on the training texts (and
cached), a tokenizer saved with each run along with the label names, cropping the padding
columns off a batch of token ids, and a Hugging Face model with a head for the labels, loaded
and wrapped in the (token ids, targets) -> (logits, loss) interface."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from config import ROOT, Config, ProjectError


def train_wordpiece(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A lower-cased WordPiece tokenizer (BERT's scheme) trained on `texts`; [PAD] is id 0."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    # No progress bars of its own: the run prints its own lines, and the training takes a second.
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]"], show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]")


WORDPIECE_RECIPE = inspect.getsource(train_wordpiece)  # part of the cache key below


def cached_wordpiece(
    texts: list[str], vocab_size: int, cache_dir: Path = ROOT / ".cache" / "tokenizers"
) -> PreTrainedTokenizerBase:
    """train_wordpiece's tokenizer for these texts: trained once, then read from cache_dir.

    Two trainings on the same texts can give different vocabularies (the trainer breaks ties in
    hash-map order: huggingface/tokenizers#1794), and so different results from the same seed.
    The key covers the texts, the size and train_wordpiece's source: edit the recipe, and the
    next run trains afresh.
    """
    key = hashlib.sha256()
    for part in (WORDPIECE_RECIPE, str(vocab_size), *texts):
        key.update(part.encode() + b"\0")
    folder = cache_dir / f"wordpiece-{key.hexdigest()[:16]}"
    if not (folder / "tokenizer.json").is_file():
        tokenizer = train_wordpiece(texts, vocab_size)
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=cache_dir))
        except OSError:  # a read-only project: train every time
            return tokenizer
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(folder)  # whole or not at all
        except OSError:  # another run cached the same texts meanwhile: use that one
            shutil.rmtree(staging, ignore_errors=True)
    return AutoTokenizer.from_pretrained(folder)


Preprocessor = TypeVar("Preprocessor", bound="SavedTokenizer")
TOKENIZER_FILE = "tokenizer.json"  # the name the tokenizer has inside an exported program


@dataclass
class SavedTokenizer:
    """A tokenizer, the label names and the padded length: what a run saves (tokenizer/ and
    preprocessor.json) so that serving tokenizes exactly as training did. Each task's
    preprocessor adds its own `encode`."""

    tokenizer: PreTrainedTokenizerBase
    labels: list[str]
    max_length: int

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def standalone_json(self) -> str:
        """The tokenizer in the `tokenizers` library's JSON, set to cut every text at max_length
        tokens and to pad a batch to its longest text itself: `tokenizers.Tokenizer.from_str(it)
        .encode_batch(texts)` gives the ids `encode` does, without transformers, less the columns
        that are padding in every row (what an exported program carries)."""
        from tokenizers import Tokenizer

        if not self.tokenizer.is_fast:
            raise ProjectError(
                f"{type(self.tokenizer).__name__} has no `tokenizers` form to export; pick a model_name"
                " whose tokenizer has a fast version"
            )
        standalone = Tokenizer.from_str(self.tokenizer.backend_tokenizer.to_str())
        standalone.enable_truncation(self.max_length)
        pad_token = self.tokenizer.pad_token
        standalone.enable_padding(pad_id=self.pad_id, pad_token=pad_token)
        return standalone.to_str()

    def save(self, run_dir: Path) -> None:
        self.tokenizer.save_pretrained(run_dir / "tokenizer")
        meta = {"labels": self.labels, "max_length": self.max_length}
        (run_dir / "preprocessor.json").write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls: type[Preprocessor], run_dir: Path) -> Preprocessor:
        meta = json.loads((run_dir / "preprocessor.json").read_text())
        return cls(AutoTokenizer.from_pretrained(run_dir / "tokenizer"), meta["labels"], meta["max_length"])


def crop_padding(input_ids: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop trailing columns that hold only padding; returns the ids and the mask of real tokens.
    The first position always counts, so an empty text is one padding token rather than nothing.
    Under torch.compile every column is kept: a width read from the data would break the graph
    there (and print a warning into the training log), and a fixed width compiles once."""
    mask = input_ids != pad_id
    mask[:, 0] = True
    if torch.compiler.is_compiling():
        return input_ids, mask
    width = int(mask.sum(dim=1).max())
    return input_ids[:, :width], mask[:, :width]


def hugging_face_model(
    auto_class: type, config: Config, labels: list[str], pad_id: int, load_weights: bool = True
) -> nn.Module:
    """config.model_name through `auto_class` (AutoModelForSequenceClassification ...), its head
    sized and named for `labels`: the pretrained weights when `load_weights` and config.pretrained,
    else the architecture only (random weights, or a trained checkpoint loaded over it later)."""
    from transformers import AutoConfig

    options = {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {name: i for i, name in enumerate(labels)},
        "pad_token_id": pad_id,
    }
    if load_weights and config.pretrained:
        return auto_class.from_pretrained(config.model_name, ignore_mismatched_sizes=True, **options)
    return auto_class.from_config(AutoConfig.from_pretrained(config.model_name, **options))


class HFTextModel(nn.Module):
    """A Hugging Face model with a head (BERT, DistilBERT, RoBERTa ...) behind the projects'
    interface: (token ids, targets) -> (logits, loss), the padding columns cropped first. `loss`
    is the task's: cross-entropy per text for a classifier, per tagged token for a tagger."""

    def __init__(
        self,
        model: nn.Module,
        pad_id: int,
        loss: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor | None],
    ):
        super().__init__()
        self.model = model
        self.pad_id = pad_id
        self.loss = loss

    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor | None = None):
        input_ids, mask = crop_padding(input_ids, self.pad_id)
        logits = self.model(input_ids=input_ids, attention_mask=mask.long()).logits
        return logits, self.loss(logits, targets)

    def features(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Each text's encoding below the head: its last hidden layer averaged over real tokens."""
        input_ids, mask = crop_padding(input_ids, self.pad_id)
        outputs = self.model(input_ids=input_ids, attention_mask=mask.long(), output_hidden_states=True)
        return mean_over_tokens(outputs.hidden_states[-1], mask)

    def layer_depths(self) -> dict[str, int]:
        return layer_depths(self)


def mean_over_tokens(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[batch, tokens, width] averaged over the tokens `mask` [batch, tokens] keeps."""
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


LAYER_INDEX = re.compile(r"\.(?:layer|layers|h|block|blocks)\.(\d+)\.")  # encoder.layer.3.attention...


def layer_depths(model: nn.Module) -> dict[str, int]:
    """How deep each trainable weight sits, for layer-wise learning rates: 0 for the embeddings
    (and their norm), i + 1 for layer i of the encoder, one more than the last layer for what sits
    above them (a final norm, a pooler, the head)."""
    embeddings = {
        f"{module_name}.{name}".lstrip(".")
        for module_name, module in model.named_modules()
        if isinstance(module, nn.Embedding)
        for name, _ in module.named_parameters(recurse=False)
    }
    depths: dict[str, int | None] = {}
    for name, weight in model.named_parameters():
        if weight.requires_grad:
            layer = LAYER_INDEX.search(f".{name}")
            embedding = name in embeddings or "embed" in name
            depths[name] = int(layer[1]) + 1 if layer else 0 if embedding else None
    top = max((depth for depth in depths.values() if depth is not None), default=0) + 1
    return {name: top if depth is None else depth for name, depth in depths.items()}
