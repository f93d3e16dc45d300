"""Instruction tuning: requests made from source, the chat template, the loss on answers only,
ROUGE-L, and a run tuned from a base on the instruction data, answering and checked."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from config import Config, resolve_auto
from conftest import TINY, read_records, run_cli, set_flags
from data import (
    ByteTokenizer,
    ChatExamples,
    prompt_room,
    prompt_targets,
    prompt_tokens,
    split_contents,
    stdlib_corpus,
)
from instructions import (
    ASSISTANT,
    END,
    IGNORE,
    USER,
    chat,
    chat_parts,
    conversations,
    function_requests,
    rouge_l,
    user_turn,
)
from network import GPT, GPTConfig
from predictor import Predictor

SOURCE = '''
def dumps(obj, *, skipkeys=False, indent=None, **kw):
    """Serialize obj to a JSON formatted str. The arguments mean what they mean for dump."""

class Reader:
    def read(self, size=-1):
        """Read."""
'''


def test_each_function_gives_a_parameter_list_and_a_summary_of_its_docstring() -> None:
    assert function_requests(SOURCE) == [
        (
            "List the parameters of def dumps(obj, *, skipkeys=False, indent=None, **kw)",
            "obj, skipkeys, indent, kw",
        ),
        (
            "Summarize: Serialize obj to a JSON formatted str. The arguments mean what they mean for dump.",
            "Serialize obj to a JSON formatted str.",
        ),
        ("List the parameters of def read(self, size=-1)", "size"),  # one sentence: nothing to summarize
    ]
    assert function_requests("def broken(:\n") == []


def test_a_validation_instruction_is_never_one_the_model_trained_on() -> None:
    held_out = (
        'def read(self, size=-1):\n    pass\n\ndef fresh(a):\n    """Make a fresh start. Then more."""\n'
    )
    train, val = conversations([SOURCE], [held_out])
    assert chat("List the parameters of def read(self, size=-1)", "size") in train  # so not in val
    assert val == [
        chat("List the parameters of def fresh(a)", "a"),
        chat("Summarize: Make a fresh start. Then more.", "Make a fresh start."),
    ]


def test_the_loss_counts_the_answer_and_its_end_marker_and_nothing_of_the_prompt() -> None:
    tokenizer = ByteTokenizer()
    short = chat("List the parameters of def f(a, b)", "a, b")
    long = chat("Summarize: " + "word " * 100, "A summary.")
    examples = ChatExamples(tokenizer, [short, long], block_size=64)
    for (inputs, targets), text in zip(examples, [short, long], strict=True):
        assert inputs.shape == targets.shape == (64,)
        counted = targets != IGNORE
        # The targets are the next tokens of the answer alone, the end marker included.
        assert tokenizer.decode(targets[counted].tolist()) == text.partition(ASSISTANT)[2]
        prompt = tokenizer.decode(inputs[: counted.nonzero()[0].item() + 1].tolist())
        assert prompt.startswith(USER) and prompt.endswith(ASSISTANT)
    # The long instruction lost its end to fit the block, never the marker the answer follows.
    inputs, targets = examples[1]
    assert (targets != IGNORE).sum() == len("A summary." + END) and (targets[-1] == IGNORE or inputs[-1] > 0)


def test_prompt_targets_counts_what_a_loss_takes_inside_the_instruction() -> None:
    tokenizer = ByteTokenizer()
    conversation = chat("List the parameters of def f(a)", "a")
    marker = tokenizer.encode(ASSISTANT)
    assert prompt_targets(ChatExamples(tokenizer, [conversation], block_size=64), marker) == 0
    # Language modelling of the whole conversation: every next token a target, the prompt's too.
    tokens = torch.tensor(tokenizer.encode(conversation))
    prompt = len(tokenizer.encode(chat_parts(conversation)[0]))  # the user's turn and the marker
    assert prompt_targets([(tokens[:-1], tokens[1:])], marker) == prompt - 1


def test_the_models_loss_is_pytorchs_over_the_answer_positions_alone() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=256, block_size=64, n_layer=1, n_head=2, n_embd=32))
    inputs, targets = ChatExamples(ByteTokenizer(), [chat("List the parameters of def f(a)", "a")], 64)[0]
    logits, loss = model(inputs[None], targets[None])
    expected = F.cross_entropy(logits[0].float(), targets, ignore_index=IGNORE)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert model.token_embedding.weight.grad.abs().sum() > 0


def test_rouge_l_is_the_f1_of_the_longest_common_word_subsequence() -> None:
    assert rouge_l("the cat sat", "the cat sat on the mat") == pytest.approx(2 * 3 / (3 + 6))
    assert rouge_l("Return the value.", "return the value.") == 1.0
    assert rouge_l("a b", "c d") == 0.0 and rouge_l("", "c d") == 0.0 and rouge_l("", "") == 1.0


def test_a_base_tuned_on_the_instruction_data_answers_in_the_template_and_check_measures_it(
    trained_run: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    tuning = {**TINY, "runs_dir": str(runs), "dataset": "instructions", "init_from": str(trained_run)}
    result = run_cli("train", "--max-steps", "20", "--run-name", "tuned", *set_flags(tuning))
    assert result.returncode == 0, result.stdout + result.stderr
    tuned = runs / "tuned"
    config = Config.load(tuned / "config.json")
    assert config.dataset == "instructions" and config.block_size == 64  # the base's context, kept
    final = read_records(tuned)[-1]
    assert final["kind"] == "final" and final["eval_loss"] > 0

    predictor = Predictor(tuned, "cpu")
    asked = "List the parameters of def f(a, b)"
    answer = predictor.predict(asked, max_new_tokens=24, temperature=0)
    assert answer["prompt"] == asked
    # An instruction is answered at its likeliest unless a temperature is asked for, and shown
    # under the instruction.
    assert predictor.predict(asked, max_new_tokens=24) == answer
    shown = run_cli("predict", "--run", str(tuned), "--max-new-tokens", "24", asked)
    assert shown.stdout == f"{asked}\n{answer['completion']}\n", shown.stderr
    assert set(answer) >= {"completion", "well_formed"}
    assert END not in answer["completion"] and USER not in answer["completion"]
    scores = predictor.answer_scores()
    assert set(scores) == {"rouge_l", "format_error_rate"}
    assert predictor.prompt_loss_tokens() == {"prompt_loss_tokens": 0}  # the answers' loss alone
    assert 0 <= scores["rouge_l"] <= 1 and 0 <= scores["format_error_rate"] <= 1
    # A long instruction keeps its start and the marker the answer follows, and leaves room for
    # the answer: half of this 64-token block.
    instruction = "Summarize: " + "word " * 100
    context = predictor.context(instruction)
    assert context == prompt_tokens(predictor.tokenizer, user_turn(instruction), prompt_room(64))
    assert len(context) == 32 and predictor.tokenizer.decode(context).startswith(USER + "Summarize: ")
    assert predictor.tokenizer.decode(context).endswith(ASSISTANT)
    assert Predictor(trained_run, "cpu").answer_scores() == {}  # plain text: it answers nothing
    assert Predictor(trained_run, "cpu").prompt_loss_tokens() == {}  # and has no prompts

    spec = tmp_path / "spec.yaml"
    rewards = [
        {"text": "answers", "threshold": {"metric": "rouge_l", "op": ">=", "value": 0.0}},
        {"text": "beats its base", "threshold": {"metric": "win_rate", "op": ">=", "value": 0.0}},
    ]
    penalties = [
        {"text": "leaks", "threshold": {"metric": "split_overlap", "op": ">", "value": 0}},
        {"text": "loss on prompts", "threshold": {"metric": "prompt_loss_tokens", "op": ">", "value": 0}},
    ]
    spec.write_text(yaml.safe_dump({"id": "t", "title": "t", "rewards": rewards, "penalties": penalties}))
    gates = json.loads(run_cli("check", "--run", str(tuned), "--spec", str(spec), "--json").stdout)
    observed = {gate["metric"]: gate["observed"] for gate in gates}
    assert observed["rouge_l"] == pytest.approx(scores["rouge_l"]) and 0 <= observed["win_rate"] <= 1
    assert observed["split_overlap"] == 0 and observed["prompt_loss_tokens"] == 0

    # The plain-text run's check says how ROUGE-L comes to be measured.
    shown = run_cli("check", "--run", str(trained_run), "--spec", str(spec)).stdout
    assert "rouge_l: measured on a run trained on the instruction data (--set dataset=instructions)" in shown


def test_the_instruction_data_splits_by_file_like_the_text_it_comes_from(config: Config) -> None:
    train, val = split_contents(replace(config, dataset="instructions"))
    assert len(train) > len(val) > 0
    assert all(text.startswith(USER) and text.endswith(END) and ASSISTANT in text for text in train + val)
    # The functions asked about in validation are defined in the held-out files.
    held_out_files = "".join(stdlib_corpus(config)[1])
    for text in val:
        if text.startswith(f"{USER}List the parameters of "):
            name = text.removeprefix(f"{USER}List the parameters of ").partition("(")[0]
            assert f"{name}(" in held_out_files, name
    # A run on it gets the context its longest conversation needs, unless one is asked for.
    assert resolve_auto(replace(config, dataset="instructions", block_size=0), cuda=False).block_size == 256
