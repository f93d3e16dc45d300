"""`runner.py export`: a run as a Hugging Face model folder that transformers loads and runs as the
project does: the same token ids, the same logits, the same greedy tokens, and for a run tuned on
instructions the same chat template, with LoRA adapters merged into the weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

from conftest import TINY, read_records, run_cli, set_flags
from data import prompt_tokens
from instructions import END, user_turn
from predictor import Predictor

TEXT = "def naïve(x):\n    return x  # 😀\n"  # bytes beyond ASCII, and a character of four bytes


def exported(run_dir: Path, output: Path) -> tuple[torch.nn.Module, object]:
    result = run_cli("export", "--run", str(run_dir), "--output", str(output))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"exported run {run_dir.name} to {output} (GPT2LMHeadModel" in result.stdout
    assert "card: README.md" in result.stdout
    return AutoModelForCausalLM.from_pretrained(output).eval(), AutoTokenizer.from_pretrained(output)


def greedy_tokens(model: torch.nn.Module, context: list[int], count: int, **settings: object) -> list[int]:
    made = model.generate(torch.tensor([context]), max_new_tokens=count, do_sample=False, **settings)
    return made[0, len(context) :].tolist()


def test_an_exported_run_reads_computes_and_generates_as_the_project_does(
    trained_run: Path, tmp_path: Path
) -> None:
    model, tokenizer = exported(trained_run, tmp_path / "hf")
    # Its README.md is the model card the Hub shows: for transformers, the run's validation scores.
    _, front, body = (tmp_path / "hf" / "README.md").read_text().split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-generation"
    scores = {entry["type"]: entry["value"] for entry in meta["model-index"][0]["results"][0]["metrics"]}
    assert scores["eval_loss"] == pytest.approx(read_records(trained_run)[-1]["eval_loss"], abs=1e-6)
    assert f"AutoModelForCausalLM.from_pretrained({str(tmp_path / 'hf')!r})" in body
    predictor = Predictor(trained_run, "cpu")
    ids = tokenizer(TEXT)["input_ids"]
    assert ids == predictor.tokenizer.encode(TEXT) and tokenizer.decode(ids) == TEXT
    with torch.no_grad():
        theirs = model(torch.tensor([ids])).logits
        ours, _ = predictor.model(torch.tensor([ids]))
    assert theirs.shape[-1] == predictor.tokenizer.vocab_size  # the padding rows are left behind
    torch.testing.assert_close(theirs, ours[..., : theirs.shape[-1]])
    context = predictor.context("def main(")
    expected = list(predictor.sample("def main(", max_new_tokens=16, temperature=0, top_k=0))
    assert greedy_tokens(model, context, 16) == expected
    # Sampling by default, as `runner.py predict` samples plain text.
    assert model.generation_config.do_sample and model.generation_config.temperature == 0.8


@pytest.fixture(scope="module")
def chat_lora_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A base with a BPE tokenizer, then LoRA adapters, both trained on the instruction data (a few
    steps each). Its tokenizer, trained on conversations, has tokens that span the chat markers."""
    runs = tmp_path_factory.mktemp("export") / "runs"
    base = {**TINY, "runs_dir": str(runs), "dataset": "instructions", "tokenizer": "bpe", "vocab_size": "600"}
    assert run_cli("train", "--max-steps", "10", "--run-name", "base", *set_flags(base)).returncode == 0
    tuning = {**base, "init_from": str(runs / "base"), "lora_rank": "2"}
    result = run_cli("train", "--max-steps", "10", "--run-name", "tuned", *set_flags(tuning))
    assert result.returncode == 0, result.stdout + result.stderr
    return runs / "tuned"


def test_a_lora_run_tuned_on_instructions_exports_merged_weights_and_its_chat_template(
    chat_lora_run: Path, tmp_path: Path
) -> None:
    model, tokenizer = exported(chat_lora_run, tmp_path / "hf")
    assert not any("lora" in name for name in model.state_dict())
    predictor = Predictor(chat_lora_run, "cpu")
    asked = "List the parameters of def f(a)"  # BPE here merges ")<|" when it reads the whole turn
    user = [{"role": "user", "content": asked}]
    assert tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False) == user_turn(asked)
    context = tokenizer.apply_chat_template(user, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert context == predictor.context(asked)  # no BPE token spans the assistant's marker
    # A whole conversation in the ids training gave it: the reply tokenized apart from the prompt.
    reply = [*user, {"role": "assistant", "content": "a"}]
    conversation = tokenizer.apply_chat_template(reply, return_dict=True)["input_ids"]
    trained = prompt_tokens(predictor.tokenizer, user_turn(asked), 64) + predictor.tokenizer.encode("a" + END)
    assert conversation == trained
    with torch.no_grad():
        theirs = model(torch.tensor([conversation])).logits
        ours, _ = predictor.model(torch.tensor([conversation]))
    torch.testing.assert_close(theirs, ours[..., : theirs.shape[-1]])

    # Greedy, as the run answers by default, ending at the end marker when asked to.
    expected = list(predictor.sample(asked, max_new_tokens=24, temperature=None, top_k=50))
    assert greedy_tokens(model, context, 24, stop_strings=[END], tokenizer=tokenizer) == expected
    assert not model.generation_config.do_sample
    generator = pipeline("text-generation", model=str(tmp_path / "hf"))
    answered = generator(user, max_new_tokens=24, stop_sequence=END)[0]["generated_text"][-1]["content"]
    assert answered.partition(END)[0] == predictor.predict(asked, max_new_tokens=24)["completion"]


def test_export_replaces_an_earlier_export_never_other_files(
    trained_run: Path, chat_lora_run: Path, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    refused = run_cli("export", "--run", str(trained_run), "--output", str(tmp_path))
    assert refused.returncode == 2
    expected = f"error: {tmp_path} holds files other than an exported model: give another --output\n"
    assert refused.stderr == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    refused = run_cli("export", "--run", str(trained_run), "--output", str(tmp_path / "notes.txt"))
    assert refused.returncode == 2 and "is a file, not a folder" in refused.stderr
    # A chat run's export, then a plain run's in the same folder: nothing of the first is left.
    for run in (chat_lora_run, trained_run):
        result = run_cli("export", "--run", str(run), "--output", str(tmp_path / "hf"), "--json")
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    assert AutoTokenizer.from_pretrained(tmp_path / "hf").chat_template is None
    written = sum(path.stat().st_size for path in (tmp_path / "hf").iterdir())
    assert json.loads(result.stdout)["bytes"] == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "notes.txt"]  # no staging folder left
    (tmp_path / "plain").mkdir()  # the export's folder gets the mode any new folder gets here
    assert (tmp_path / "hf").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777
