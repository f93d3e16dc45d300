"""Texts in, masked-language-model examples out: the two corpora, the split, the tokenizer and
the masking.

Domain adaptation reads two corpora:
  the domain   what the encoder is adapted to (config.dataset):
                 builtin     contract clauses generated here from a fixed seed, 5,000 of them, each
                             labelled with its kind (confidentiality, termination, payment ...)
                 a file      .txt (a text per line) / .csv / .json / .jsonl / .parquet with a text
                             column, and a label column if the clauses are labelled
                 a folder    a dataset saved with `save_to_disk`, or a folder of such files
                 a hub name  any Hugging Face text dataset (needs the network once)
  the general  what the original encoder was trained on, and the benchmark that shows what
               adaptation costs there: the paragraphs of the docstrings of the Python standard
               library on this machine (about 7,000 of real English, nothing to download)

The tokenizer is the original encoder's: a WordPiece vocabulary trained on the general corpus
(cached in .cache/tokenizers/), or the Hugging Face model's own when config.model_name is set. The
domain's words are cut into the pieces that vocabulary has, as a real adaptation's are.

Masking follows BERT: mask_ratio of each text's tokens are chosen; of those, 80% become [MASK],
10% a random token and 10% stay; the model is scored on what was there. Training draws a new
choice every time it sees a text; evaluation makes the same choice every time (seeded by the
text's place), so its losses compare.
"""

from __future__ import annotations

import ast
import functools
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from config import Config, ProjectError
from loading import find_column, read_dataset, train_val_split
from text_encoding import SavedTokenizer, cached_wordpiece

if TYPE_CHECKING:  # imported only for a source that is not built in
    from datasets import Dataset

IGNORED = -100  # the target of a token the model is not scored on (not masked)
UNLABELLED = -1  # the clause label of a text without one (and of every general text)
DOMAIN, GENERAL = 0, 1
EVAL_MASK_SEED = 0
TEXT_COLUMNS = ("text", "clause", "sentence", "content")
LABEL_COLUMNS = ("label", "labels", "clause_type", "category", "class")
GENERAL_PACKAGES = ("asyncio", "email", "http", "json", "logging", "unittest", "urllib", "xml")
GENERAL_VAL_TEXTS = 1000  # general paragraphs held out from the original encoder's training
BUILTIN_CLAUSES, BUILTIN_SEED = 5000, 2026


# --- The general corpus ----------------------------------------------------------------------


@functools.cache  # read once a process: 2 s of parsing
def general_paragraphs() -> tuple[str, ...]:
    """The paragraphs (40 characters or more) of the docstrings of the standard library's
    top-level modules and of GENERAL_PACKAGES, each once, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(root.glob("*.py"))
    for package in GENERAL_PACKAGES:
        paths += sorted(
            p for p in (root / package).rglob("*.py") if "test" not in p.relative_to(root).parts[1:-1]
        )
    paragraphs, seen = [], set()
    for path in paths:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                for paragraph in (ast.get_docstring(node) or "").split("\n\n"):
                    paragraph = " ".join(paragraph.split())
                    if len(paragraph) >= 40 and paragraph not in seen:
                        seen.add(paragraph)
                        paragraphs.append(paragraph)
    return tuple(paragraphs)


def general_split(seed: int) -> tuple[list[str], list[str]]:
    """The general paragraphs the original encoder trains on, and the ones held out from it."""
    paragraphs = general_paragraphs()
    order = np.random.default_rng(seed).permutation(len(paragraphs))
    held_out = min(GENERAL_VAL_TEXTS, len(paragraphs) // 5)
    return [paragraphs[i] for i in order[held_out:]], [paragraphs[i] for i in order[:held_out]]


# --- The built-in contract clauses -----------------------------------------------------------

PARTIES = [
    ("the Supplier", "the Customer"),
    ("the Licensor", "the Licensee"),
    ("the Company", "the Contractor"),
    ("the Seller", "the Buyer"),
    ("the Provider", "the Client"),
    ("the Lessor", "the Lessee"),
    ("the Vendor", "the Purchaser"),
    ("the Consultant", "the Company"),
    ("the Distributor", "the Manufacturer"),
]
DAYS = ["five (5)", "ten (10)", "fifteen (15)", "thirty (30)", "forty-five (45)", "sixty (60)", "ninety (90)"]
YEARS = ["one (1) year", "two (2) years", "three (3) years", "five (5) years", "seven (7) years"]
PLACES = [
    ("the State of New York", "New York County"),
    ("England and Wales", "London"),
    ("the State of Delaware", "Wilmington"),
    ("the Province of Ontario", "Toronto"),
    ("the State of California", "San Francisco"),
    ("Ireland", "Dublin"),
    ("Singapore", "Singapore"),
]
AMOUNTS = ["$10,000", "$25,000", "$50,000", "$100,000", "$250,000", "$1,000,000", "EUR 75,000", "GBP 40,000"]
INFORMATION = [
    "trade secrets",
    "customer lists",
    "pricing information",
    "source code",
    "business plans",
    "technical data",
    "financial statements",
    "product roadmaps",
]
EVENTS = [
    "acts of God",
    "fire",
    "flood",
    "earthquake",
    "war",
    "terrorism",
    "epidemic",
    "governmental action",
    "labour disputes",
    "failure of public utilities",
]

# Each kind of clause: sentences in the voice of contracts, with {slots} filled at random. A clause
# is two to four of its kind's sentences, sometimes with a sentence any clause might carry.
CLAUSES: dict[str, list[str]] = {
    "confidentiality": [
        "{b} shall hold in strict confidence all Confidential Information disclosed by {a}.",
        "Confidential Information includes {info}, {info2} and any other information marked as confidential.",
        "{b} shall not disclose Confidential Information to any third party without the prior written "
        "consent of {a}.",
        "The obligations of confidentiality shall continue for {years} after the disclosure of the "
        "information.",
        "{b} may disclose Confidential Information where required by law, provided that it gives {a} prompt "
        "notice.",
        "Upon request, {b} shall return or destroy all documents containing Confidential Information.",
    ],
    "termination": [
        "Either party may terminate this Agreement upon {days} days' written notice to the other party.",
        "{a} may terminate this Agreement immediately if {b} commits a material breach and fails to cure it "
        "within {days} days.",
        "This Agreement shall remain in force for an initial term of {years} and renew automatically for "
        "successive terms.",
        "Either party may terminate this Agreement if the other party becomes insolvent or makes an "
        "assignment for the benefit of creditors.",
        "Upon termination, {b} shall pay all amounts accrued up to the effective date of termination.",
        "Termination shall not affect any rights or remedies that have accrued before the date of "
        "termination.",
    ],
    "payment": [
        "{b} shall pay {a} the fees set out in Schedule 1 within {days} days of the date of each invoice.",
        "All fees are exclusive of taxes, which {b} shall pay in addition at the applicable rate.",
        "Late payments shall bear interest at the rate of one and a half percent (1.5%) per month.",
        "{a} shall invoice {b} monthly in arrears for the services performed during the preceding month.",
        "{b} may withhold any amount disputed in good faith, provided that it notifies {a} within {days} "
        "days.",
        "The total fees payable under this Agreement shall not exceed {amount} without a written amendment.",
    ],
    "liability": [
        "In no event shall {a} be liable for any indirect, incidental, special or consequential damages.",
        "The total liability of {a} under this Agreement shall not exceed {amount} in the aggregate.",
        "Neither party shall be liable for loss of profits, loss of revenue or loss of data, however "
        "arising.",
        "Nothing in this Agreement limits liability for death or personal injury caused by negligence or "
        "for fraud.",
        "The limitations of liability in this Section apply whether the claim arises in contract, tort or "
        "otherwise.",
        "The aggregate liability of each party shall be limited to the fees paid in the twelve (12) months "
        "preceding the claim.",
    ],
    "indemnification": [
        "{b} shall indemnify, defend and hold harmless {a} from and against all claims, losses and expenses.",
        "{a} shall indemnify {b} against any claim that the deliverables infringe the intellectual property "
        "rights of a third party.",
        "The indemnified party shall give the indemnifying party prompt written notice of any claim.",
        "The indemnifying party shall have sole control of the defence and settlement of the claim.",
        "The indemnity extends to reasonable legal fees incurred in connection with any such claim.",
        "{b} shall not settle any claim that imposes an obligation on {a} without its prior written consent.",
    ],
    "governing_law": [
        "This Agreement shall be governed by and construed in accordance with the laws of {law}.",
        "The courts of {court} shall have exclusive jurisdiction over any dispute arising out of this "
        "Agreement.",
        "Each party irrevocably submits to the jurisdiction of the courts of {law}.",
        "Any dispute shall first be referred to arbitration seated in {court} under the rules then in force.",
        "The United Nations Convention on Contracts for the International Sale of Goods shall not apply.",
        "The parties waive any objection to the venue of proceedings brought in {court}.",
    ],
    "force_majeure": [
        "Neither party shall be liable for any failure or delay caused by events beyond its reasonable "
        "control.",
        "Such events include {event}, {event2} and {event3}.",
        "The affected party shall notify the other party of the force majeure event within {days} days.",
        "If the force majeure event continues for more than {days} days, either party may terminate this "
        "Agreement.",
        "The affected party shall use reasonable efforts to mitigate the effect of the force majeure event.",
        "The time for performance shall be extended by a period equal to the duration of the event.",
    ],
    "assignment": [
        "{b} shall not assign or transfer any of its rights under this Agreement without the consent of {a}.",
        "{a} may assign this Agreement to an affiliate or to a successor to all or substantially all of its "
        "business.",
        "Any purported assignment in violation of this Section shall be null and void.",
        "This Agreement shall be binding upon and inure to the benefit of the parties and their permitted "
        "assigns.",
        "{b} may not subcontract any of its obligations without the prior written approval of {a}.",
        "A change of control of {b} shall be deemed an assignment for the purposes of this Section.",
    ],
}
ANY_CLAUSE = [
    "This Section shall survive the expiration or termination of this Agreement.",
    "For the avoidance of doubt, this Section applies to all Statements of Work issued under this Agreement.",
    "Capitalised terms used in this Section have the meanings given to them in Section 1.",
]


def contract_clause(kind: str, rng: np.random.Generator) -> str:
    """One clause of `kind`: two to four of its sentences, in the order the list gives them."""
    sentences = CLAUSES[kind]
    chosen = sorted(rng.choice(len(sentences), size=rng.integers(2, 5), replace=False))
    text = [sentences[i] for i in chosen]
    if rng.random() < 0.3:
        text.append(ANY_CLAUSE[rng.integers(len(ANY_CLAUSE))])
    a, b = PARTIES[rng.integers(len(PARTIES))]
    law, court = PLACES[rng.integers(len(PLACES))]
    info = rng.choice(INFORMATION, size=2, replace=False)
    events = rng.choice(EVENTS, size=3, replace=False)
    slots = {
        "a": a,
        "b": b,
        "law": law,
        "court": court,
        "info": info[0],
        "info2": info[1],
        "days": DAYS[rng.integers(len(DAYS))],
        "years": YEARS[rng.integers(len(YEARS))],
        "amount": AMOUNTS[rng.integers(len(AMOUNTS))],
        "event": events[0],
        "event2": events[1],
        "event3": events[2],
    }
    filled = (sentence.format(**slots) for sentence in text)
    return " ".join(sentence[0].upper() + sentence[1:] for sentence in filled)


def builtin_clauses(count: int = BUILTIN_CLAUSES, seed: int = BUILTIN_SEED) -> tuple[list[str], list[int]]:
    """`count` different clauses, the kinds in turn, and each one's kind (an index into CLAUSES).
    A clause drawn twice is drawn again: a copy on each side of the split would score the model on
    what it trained on."""
    rng = np.random.default_rng(seed)
    kinds = list(CLAUSES)
    labels = [i % len(kinds) for i in range(count)]
    texts: list[str] = []
    seen: set[str] = set()
    for label in labels:
        text = contract_clause(kinds[label], rng)
        while text in seen:
            text = contract_clause(kinds[label], rng)
        seen.add(text)
        texts.append(text)
    return texts, labels


# --- Tokenization and masking ----------------------------------------------------------------


class MaskingTokenizer(SavedTokenizer):
    """The original encoder's tokenizer, the domain's label names and the padded length (saved with
    each run, so that serving reads text as training did; see SavedTokenizer), and its mask."""

    @property
    def mask_id(self) -> int:
        return self.tokenizer.mask_token_id

    @property
    def special_ids(self) -> list[int]:
        return list(self.tokenizer.all_special_ids)

    def encode(self, texts: list[str]) -> torch.Tensor:
        """Token ids [texts, max_length], padded (and cut) to max_length."""
        encoded = self.tokenizer(
            texts, truncation=True, max_length=self.max_length, padding="max_length", return_tensors="pt"
        )
        return encoded["input_ids"]


def load_preprocessor(run_dir: Path) -> MaskingTokenizer:
    return MaskingTokenizer.load(run_dir)


def original_tokenizer(config: Config, general_texts: list[str]) -> PreTrainedTokenizerBase:
    """The Hugging Face model's tokenizer, or a WordPiece vocabulary trained on the general corpus,
    with a [MASK] token."""
    if config.model_name:
        tokenizer = AutoTokenizer.from_pretrained(config.model_name)
        if tokenizer.mask_token is None:
            raise ProjectError(f"{config.model_name}'s tokenizer has no mask token: use a masked-LM encoder")
        return tokenizer
    tokenizer = cached_wordpiece(general_texts, config.vocab_size)
    tokenizer.add_special_tokens({"mask_token": "[MASK]"})
    return tokenizer


def mask_tokens(
    input_ids: torch.Tensor, tokenizer: MaskingTokenizer, ratio: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking of one text's ids: the masked ids and the targets (IGNORED where not masked).
    At least one real token is chosen."""
    real = ~torch.isin(input_ids, torch.tensor(tokenizer.special_ids))
    chosen = (torch.rand(input_ids.shape, generator=generator) < ratio) & real
    if not chosen.any() and real.any():
        places = real.nonzero().flatten()
        chosen[places[torch.randint(len(places), (1,), generator=generator)]] = True
    targets = torch.where(chosen, input_ids, IGNORED)
    draw = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (draw < 0.8)] = tokenizer.mask_id
    swapped = chosen & (draw >= 0.8) & (draw < 0.9)
    masked[swapped] = torch.randint(tokenizer.vocab_size, input_ids.shape, generator=generator)[swapped]
    return masked, targets


def pack_targets(token_targets: torch.Tensor, label: int, corpus: int) -> torch.Tensor:
    """One example's targets as one tensor (what the trainer moves to the device): the token
    targets, then the clause label, then the corpus (DOMAIN or GENERAL)."""
    return torch.cat([token_targets, torch.tensor([label, corpus])])


def unpack_targets(targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch's packed targets [B, length + 2] -> token targets [B, length], labels [B], corpus [B]."""
    return targets[:, :-2], targets[:, -2], targets[:, -1]


class MaskedTexts(torch.utils.data.Dataset):
    """Texts tokenized once, up front, and masked as they are read: (masked ids, packed targets)."""

    def __init__(
        self,
        texts: list[str],
        labels: list[int],
        corpus: list[int],
        tokenizer: MaskingTokenizer,
        ratio: float,
        train: bool,
    ):
        self.texts, self.labels, self.corpus = texts, labels, corpus
        self.tokenizer, self.ratio, self.train = tokenizer, ratio, train
        self.input_ids = (
            tokenizer.encode(texts) if texts else torch.zeros(0, tokenizer.max_length, dtype=torch.long)
        )

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = None if self.train else torch.Generator().manual_seed(EVAL_MASK_SEED * 1_000_003 + index)
        masked, token_targets = mask_tokens(self.input_ids[index], self.tokenizer, self.ratio, generator)
        return masked, pack_targets(token_targets, self.labels[index], self.corpus[index])


@dataclass
class TaskData:
    train: MaskedTexts  # domain texts (and general ones, config.general_mix of them, replayed)
    val: MaskedTexts  # held-out domain texts, then the held-out general paragraphs
    preprocessor: MaskingTokenizer


def domain_splits(config: Config) -> tuple[list[str], list[int], list[str], list[int], list[str]]:
    """The domain's training and validation texts with their labels, and the label names."""
    if config.dataset == "builtin":
        texts, labels = builtin_clauses()
        order = np.random.default_rng(config.seed).permutation(len(texts))
        held_out = int(len(texts) * config.val_fraction)
        val, train = order[:held_out], order[held_out:]
        return (
            [texts[i] for i in train],
            [labels[i] for i in train],
            [texts[i] for i in val],
            [labels[i] for i in val],
            list(CLAUSES),
        )
    source = read_dataset(config.dataset)
    text_column = find_column(source, config.text_column, TEXT_COLUMNS, "text_column")
    label_column = find_label_column(source, config.label_column)
    train, val = train_val_split(source, config, label_column)
    names = list(train.features[label_column].names) if label_column else []
    train_labels = list(train[label_column]) if label_column else [UNLABELLED] * len(train)
    val_labels = list(val[label_column]) if label_column else [UNLABELLED] * len(val)
    return list(train[text_column]), train_labels, list(val[text_column]), val_labels, names


def find_label_column(source: Dataset, wanted: str) -> str | None:
    """The clause-label column: the one set, else one found by name, else none (unlabelled)."""
    from datasets import DatasetDict

    features = (source["train"] if isinstance(source, DatasetDict) else source).features
    if wanted or any(name in features for name in LABEL_COLUMNS):
        return find_column(source, wanted, LABEL_COLUMNS, "label_column")
    return None


def split_contents(config: Config) -> tuple[list[str], list[str]]:
    """The text of every training and validation domain example, for counting copies across."""
    train, _, val, _, _ = domain_splits(config)
    return train, val


def build_data(config: Config, run_dir: Path | None = None) -> TaskData:
    """Read both corpora, split them, load (or train) the original tokenizer, tokenize them."""
    train, train_labels, val, val_labels, names = domain_splits(config)
    general_train, general_val = general_split(config.seed)
    if run_dir is not None:
        preprocessor = load_preprocessor(run_dir)
    else:
        preprocessor = MaskingTokenizer(original_tokenizer(config, general_train), names, config.max_length)
    replayed = general_train[: round(len(train) * config.general_mix)]
    train_texts = train + replayed
    train_corpus = [DOMAIN] * len(train) + [GENERAL] * len(replayed)
    # The two corpora dealt together in a seeded order, so that an evaluation of the first
    # eval_batches batches scores both.
    val_examples = [(text, label, DOMAIN) for text, label in zip(val, val_labels, strict=True)]
    val_examples += [(text, UNLABELLED, GENERAL) for text in general_val]
    order = np.random.default_rng(config.seed).permutation(len(val_examples))
    val_texts, val_labels, val_corpus = (
        list(column) for column in zip(*(val_examples[i] for i in order), strict=True)
    )
    ratio = config.mask_ratio
    return TaskData(
        train=MaskedTexts(
            train_texts,
            train_labels + [UNLABELLED] * len(replayed),
            train_corpus,
            preprocessor,
            ratio,
            train=True,
        ),
        val=MaskedTexts(val_texts, val_labels, val_corpus, preprocessor, ratio, train=False),
        preprocessor=preprocessor,
    )
