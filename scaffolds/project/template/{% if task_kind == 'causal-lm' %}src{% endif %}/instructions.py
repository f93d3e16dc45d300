"""Instruction data made from Python source, the chat template it is written in, and the scores of
generated responses.

Every function of a source file gives the two requests an internal tool makes of a model:
  extraction  "List the parameters of def dumps(obj, *, skipkeys=False)" -> "obj, skipkeys"
  summary     "Summarize: <its docstring, of more than one sentence>" -> the docstring's first
              sentence (the standard library writes its summary line first, by PEP 257)
Both answers are taken from the code itself, so the data is as licensed as the files it comes
from (the standard library's: the PSF licence) and needs no download.

The chat template: <|user|>{instruction}<|assistant|>{response}<|end|>. A model trained on it
answers after <|assistant|> and ends with <|end|>; a response without that end is a format error.
"""

from __future__ import annotations

import ast
import re

USER, ASSISTANT, END = "<|user|>", "<|assistant|>", "<|end|>"
IGNORE = -100  # the target of a token the loss skips (PyTorch's cross_entropy default)
# Characters: with the template's 28, a conversation fits the 256 tokens of context a run on this
# data gets (config.CHAT_CONTEXT) even with the byte tokenizer.
LONGEST_INSTRUCTION = 160
LONGEST_RESPONSE = 60


def chat(instruction: str, response: str) -> str:
    """One conversation in the chat template."""
    return f"{USER}{instruction}{ASSISTANT}{response}{END}"


def chat_parts(conversation: str) -> tuple[str, str]:
    """(the user's turn, up to the assistant's marker; the response with its end marker)."""
    prompt, marker, response = conversation.partition(ASSISTANT)
    return prompt + marker, response


def user_turn(instruction: str) -> str:
    """What a model is given to answer `instruction`: the conversation up to the assistant's turn."""
    return f"{USER}{instruction}{ASSISTANT}"


def read_response(generated: str) -> tuple[str, bool]:
    """The response in what a model generated after the user's turn, and whether it kept to the
    template (a non-empty answer closed by the end marker)."""
    response, end, _ = generated.partition(END)
    return response.strip(), bool(end) and bool(response.strip())


# --- Instructions from source --------------------------------------------------------------


def first_sentence(paragraph: str) -> str:
    return re.split(r"(?<=[.!?])\s", paragraph, maxsplit=1)[0]


def function_requests(source: str) -> list[tuple[str, str]]:
    """(instruction, response) pairs for the functions of one source file (none if it does not
    parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    pairs = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        arguments = node.args
        every = [*arguments.posonlyargs, *arguments.args, arguments.vararg, *arguments.kwonlyargs]
        every.append(arguments.kwarg)
        names = [argument.arg for argument in every if argument and argument.arg not in ("self", "cls")]
        signature = f"def {node.name}({ast.unparse(arguments)})"
        extraction = f"List the parameters of {signature}"
        if len(extraction) <= LONGEST_INSTRUCTION and len(", ".join(names)) <= LONGEST_RESPONSE:
            pairs.append((extraction, ", ".join(names) or "none"))
        docstring = " ".join((ast.get_docstring(node) or "").split())
        summary = first_sentence(docstring)
        if 10 <= len(summary) <= LONGEST_RESPONSE and len(summary) < len(docstring):
            pairs.append((f"Summarize: {docstring}"[:LONGEST_INSTRUCTION], summary))
    return pairs


def conversations(train_sources: list[str], val_sources: list[str]) -> tuple[list[str], list[str]]:
    """Training and validation conversations from the functions of each side's files. An
    instruction is kept once, on the training side if it is there at all: a validation
    instruction also trained on would score the model on an answer it was shown."""
    train = dict(pair for source in train_sources for pair in function_requests(source))
    val = {
        instruction: response
        for source in val_sources
        for instruction, response in function_requests(source)
        if instruction not in train
    }
    return [chat(*pair) for pair in train.items()], [chat(*pair) for pair in val.items()]


# --- Scores --------------------------------------------------------------------------------


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 of two texts' words: the longest common subsequence against both lengths."""
    ours, theirs = candidate.lower().split(), reference.lower().split()
    if not ours or not theirs:
        return float(ours == theirs)
    previous = [0] * (len(theirs) + 1)
    for word in ours:
        current = [0]
        for index, other in enumerate(theirs):
            current.append(previous[index] + 1 if word == other else max(previous[index + 1], current[index]))
        previous = current
    common = previous[-1]
    return 0.0 if common == 0 else 2 * common / (len(ours) + len(theirs))
