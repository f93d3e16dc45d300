"""The GPT: shapes, the loss, the bf16 residual stream, causality, tied and padded embeddings,
GPT-2 size, FLOPs, where its output layer trains in float8, generation with and without its
key-value cache, LoRA adapters and fine-tuning from an earlier run; a local HF model, and LoRA on
it."""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from config import PRESETS, Config, ProjectError, resolve_auto
from conftest import TINY, read_records, run_cli, set_flags
from data import PretrainedTokenizer, TaskData, build_data, stdlib_sources, train_bpe
from network import (
    GPT,
    GPTConfig,
    HFCausalLM,
    LayerCache,
    LoRALinear,
    add_lora,
    build_model,
    count_parameters,
    cross_entropy,
    generate,
    merge_lora,
)
from predictor import Predictor
from trainer import load_trained_model


def tiny_gpt(vocab_size: int = 256) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=32))


def test_a_lora_model_starts_as_the_model_it_adapts_and_trains_only_its_adapters() -> None:
    base = tiny_gpt()
    tokens, targets = torch.randint(0, 256, (2, 16)), torch.randint(0, 256, (2, 16))
    before, _ = base(tokens)
    tuned = add_lora(copy.deepcopy(base), rank=4, alpha=8.0)
    after, loss = tuned(tokens, targets)
    assert torch.equal(before, after)  # each adapter's B starts at zero
    loss.backward()
    trained = {name for name, parameter in tuned.named_parameters() if parameter.grad is not None}
    adapters = {name for name, _ in tuned.named_parameters() if name.endswith(("lora_a", "lora_b"))}
    assert trained == adapters and len(adapters) == 2 * 4 * 2  # A and B beside 4 matmuls in 2 blocks
    # rank x (in + out) per matmul: qkv 4 x (32 + 96), proj 4 x 64, fc 4 x (32 + 128), proj 4 x 160.
    assert count_parameters(tuned, trainable_only=True) == 2 * 4 * (128 + 64 + 160 + 160)


def test_merged_adapters_give_the_adapted_models_outputs_from_the_bases_matmuls_alone() -> None:
    tuned = add_lora(tiny_gpt(), rank=4, alpha=8.0).eval()
    torch.manual_seed(1)
    for name, parameter in tuned.named_parameters():
        if name.endswith("lora_b"):  # as after training: B no longer zero
            parameter.data.normal_(std=0.05)
    tokens = torch.randint(0, 256, (2, 16))
    adapted, _ = tuned(tokens)
    merged = merge_lora(tuned)
    assert not any(isinstance(module, LoRALinear) for module in merged.modules())
    assert count_parameters(merged) == count_parameters(tiny_gpt())
    assert not torch.allclose(merged(tokens)[0], tiny_gpt()(tokens)[0], atol=1e-3)  # the updates are in
    torch.testing.assert_close(merged(tokens)[0], adapted, rtol=1e-4, atol=1e-5)


def test_lora_adapts_each_matmul_of_a_hugging_face_gpt2_but_its_output_and_merges_its_conv1d() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=2))
    tuned = add_lora(HFCausalLM(gpt2), rank=4, alpha=8.0)
    names = [name for name, _ in tuned.named_parameters()]
    adapted_layers = {name.removesuffix(".lora_a") for name in names if name.endswith("lora_a")}
    # GPT-2's Conv1D layers (weights held as [in, out]): c_attn, c_proj, c_fc and mlp.c_proj per block.
    assert len(adapted_layers) == 2 * 4 and not any("lm_head" in name for name in adapted_layers)
    trainable = {name for name, p in tuned.named_parameters() if p.requires_grad}
    assert trainable == {name for name, _ in tuned.named_parameters() if "lora_" in name}
    for name, parameter in tuned.named_parameters():
        if name.endswith("lora_b"):  # as after training: B no longer zero
            parameter.data.normal_(std=0.05)
    tokens = torch.randint(0, 64, (2, 16))
    adapted, _ = tuned.eval()(tokens)
    merged, _ = merge_lora(tuned)(tokens)
    assert not any(isinstance(module, LoRALinear) for module in tuned.modules())
    torch.testing.assert_close(merged, adapted, rtol=1e-4, atol=1e-5)


def test_a_frozen_weight_costs_4_flops_per_token_and_a_trained_one_6() -> None:
    base = tiny_gpt()
    tuned = add_lora(copy.deepcopy(base), rank=4, alpha=8.0)
    weights = count_parameters(base) - base.position_embedding.weight.numel()
    adapters = count_parameters(tuned, trainable_only=True)
    # No gradient for the frozen weights themselves: 2N forward and 2N for the activations' gradients.
    assert tuned.flops_per_token() == base.flops_per_token() - 2 * weights + 6 * adapters


def test_a_hugging_face_gpt2_counts_the_flops_its_matmuls_and_attention_cost() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    shape = {"n_layer": 2, "n_head": 2, "n_embd": 32}
    ours = GPT(GPTConfig(vocab_size=64, block_size=32, **shape))
    theirs = HFCausalLM(GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, **shape)), context=32)
    # Per block c_attn 32 x 96, attn.c_proj 32 x 32, c_fc 32 x 128, mlp.c_proj 128 x 32; the output
    # layer (tied to the embedding) 64 x 32; attention 12 x 2 layers x 32 wide x 32 tokens.
    matmuls, attention = 2 * (3072 + 1024 + 4096 + 4096) + 64 * 32, 12 * 2 * 32 * 32
    assert theirs.flops_per_token() == 6 * matmuls + attention
    assert theirs.flops_per_token() == pytest.approx(ours.flops_per_token(), rel=0.01)  # its layer norms
    tuned = add_lora(theirs, rank=4, alpha=8.0)
    adapters = count_parameters(tuned, trainable_only=True)
    assert tuned.flops_per_token() == 4 * matmuls + 6 * adapters + attention


def test_logits_cover_the_padded_vocabulary_and_loss_is_near_uniform_at_start() -> None:
    model = tiny_gpt(vocab_size=300)
    tokens = torch.randint(0, 300, (2, 16))
    logits, loss = model(tokens, tokens)
    assert logits.shape == (2, 16, 320)  # 300 padded to a multiple of 64
    assert loss.item() == pytest.approx(torch.log(torch.tensor(320.0)).item(), rel=0.1)
    assert model(tokens)[1] is None


def test_the_loss_is_pytorchs_cross_entropy_and_only_it_carries_gradients() -> None:
    torch.manual_seed(0)
    logits, targets = torch.randn(48, 320), torch.randint(0, 300, (48,))
    leaf = logits.clone().requires_grad_()
    (cross_entropy(leaf * 2.0, targets) / 4).backward()  # gradients flow in and out of it, scaled
    reference = logits.clone().requires_grad_()
    (F.cross_entropy(reference * 2.0, targets) / 4).backward()
    torch.testing.assert_close(leaf.grad, reference.grad)
    with torch.no_grad():  # evaluation
        torch.testing.assert_close(cross_entropy(logits, targets), F.cross_entropy(logits, targets))

    model = tiny_gpt()
    tokens = torch.randint(0, 256, (2, 16))
    returned_logits, loss = model(tokens, tokens)
    assert loss.requires_grad and not returned_logits.requires_grad


def test_under_autocast_the_residual_stream_is_bf16_and_float32_without() -> None:
    model = tiny_gpt()
    seen: list[torch.dtype] = []
    model.blocks[1].register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    tokens = torch.randint(0, 256, (2, 16))
    model(tokens, tokens)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, loss = model(tokens, tokens)
    assert seen == [torch.float32, torch.bfloat16]
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_a_token_never_sees_the_tokens_after_it() -> None:
    model = tiny_gpt().eval()
    tokens = torch.randint(0, 256, (1, 20))
    changed = tokens.clone()
    changed[0, 12:] = (changed[0, 12:] + 1) % 256
    with torch.no_grad():
        a, b = model(tokens)[0], model(changed)[0]
    assert torch.allclose(a[0, :12], b[0, :12], atol=1e-6)
    assert not torch.allclose(a[0, 12:], b[0, 12:])


def test_input_and_output_embeddings_are_one_matrix() -> None:
    model = tiny_gpt()
    assert model.lm_head.weight is model.token_embedding.weight
    assert count_parameters(model) == sum(p.numel() for p in set(model.parameters()))


def test_the_gpt2_124m_preset_has_gpt2_smalls_size() -> None:
    shape = {k: PRESETS["gpt2-124m"][k] for k in ("n_layer", "n_head", "n_embd", "block_size")}
    with torch.device("meta"):  # shapes only: no memory, no time
        model = GPT(GPTConfig(vocab_size=50257, **shape))
    assert 123e6 < count_parameters(model) < 125e6
    n, layers, embd, context = count_parameters(model) - 1024 * 768, 12, 768, 1024
    assert model.flops_per_token() == 6 * n + 12 * layers * embd * context


def test_greedy_generation_is_repeatable_and_stays_in_the_vocabulary() -> None:
    model = tiny_gpt(vocab_size=100).eval()
    options = {"max_new_tokens": 40, "block_size": 32, "vocab_size": 100, "temperature": 0.0}
    first = list(generate(model, [1, 2, 3], **options))
    assert first == list(generate(model, [1, 2, 3], **options))
    assert len(first) == 40 and max(first) < 100
    sampled = list(generate(model, [1, 2, 3], **{**options, "temperature": 1.0, "top_k": 5}))
    assert len(sampled) == 40 and max(sampled) < 100


def test_generation_with_the_cache_samples_what_rerunning_the_context_samples() -> None:
    """The cache changes the cost of a token, not the token, as long as the context fits."""
    model = tiny_gpt(vocab_size=100).eval()
    options = {"max_new_tokens": 29, "block_size": 32, "vocab_size": 100, "temperature": 0.0}
    cached = list(generate(model, [1, 2, 3], **options))
    assert cached == list(generate(model, [1, 2, 3], **options, use_cache=False))
    torch.manual_seed(0)
    sampled = list(generate(model, [1, 2, 3], **{**options, "temperature": 1.0}))
    torch.manual_seed(0)
    assert sampled == list(generate(model, [1, 2, 3], **{**options, "temperature": 1.0}, use_cache=False))
    # Past block_size the cache starts again from half a block: tokens keep coming.
    longer = list(generate(model, [1, 2, 3], **{**options, "max_new_tokens": 100}))
    assert longer[:29] == cached and len(longer) == 100 and max(longer) < 100


def test_a_cached_forward_pass_gives_the_last_positions_logits() -> None:
    model = tiny_gpt(vocab_size=100).eval()
    tokens = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        full, _ = model(tokens)
        cache = [LayerCache() for _ in model.blocks]
        prompt, _ = model(tokens[:, :3], cache=cache)
        step, _ = model(tokens[:, 3:], cache=cache)
        assert cache[0].length == 4 and prompt.shape[1] == step.shape[1] == 1
        torch.testing.assert_close(prompt[0, -1], full[0, 2], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(step[0, -1], full[0, 3], rtol=1e-4, atol=1e-5)
        with pytest.raises(ValueError, match="one token at a time"):
            model(tokens[:, :2], cache=cache)


def test_the_model_is_built_from_the_settings(config: Config, data: TaskData) -> None:
    model = build_model(config, data.preprocessor)
    assert isinstance(model, GPT)
    assert (model.config.n_layer, model.config.block_size) == (config.n_layer, config.block_size)
    assert build_model(replace(config, float8_head="true"), data.preprocessor).config.float8_head


def test_the_float8_head_is_on_where_float8_tensor_cores_train_the_lean_gpts_output_layer() -> None:
    def float8_head(float8: bool = True, **settings: object) -> str:
        return resolve_auto(replace(Config(), **settings), cuda=True, float8=float8).float8_head

    assert float8_head() == "true"
    assert float8_head(float8=False) == "false"  # an A100: no float8 tensor cores
    assert resolve_auto(Config(), cuda=False).float8_head == "false"
    assert float8_head(precision="fp32") == float8_head(device="cpu") == "false"
    assert float8_head(model_name="gpt2") == "false"  # the lean GPT's layer, not a Hugging Face model's
    assert float8_head(model_name="gpt2", lora_rank=8) == "false"
    assert float8_head(float8_head="false") == "false"
    with pytest.raises(ProjectError, match="float8 tensor cores"):
        float8_head(float8=False, float8_head="true")
    with pytest.raises(ProjectError, match="give auto, true or false"):
        float8_head(float8_head="yes")
    # Asked for where it would not run: an error, not a setting the run ignores.
    with pytest.raises(ProjectError, match="float8 tensor cores"):
        float8_head(float8_head="true", device="cpu")
    with pytest.raises(ProjectError, match="lean GPT's output layer"):
        float8_head(float8_head="true", model_name="gpt2")
    with pytest.raises(ProjectError, match="lean GPT's output layer"):
        float8_head(float8_head="true", model_name="gpt2", lora_rank=8)
    assert float8_head(float8_head="true") == "true"


@pytest.fixture(scope="module")
def local_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 and its tokenizer saved with save_pretrained, as a downloaded model sits on disk."""
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("gpt2")
    documents = [p.read_text(encoding="utf-8") for p in stdlib_sources(max_mb=0.1)]
    tokenizer = train_bpe(documents, vocab_size=300)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    model_config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=1, n_head=2)
    GPT2LMHeadModel(model_config).save_pretrained(folder)
    return folder


def test_a_hugging_face_model_and_tokenizer_load_from_a_folder(config: Config, local_gpt2: Path) -> None:
    from transformers import GPT2LMHeadModel

    config = replace(config, model_name=str(local_gpt2), block_size=32, corpus_mb=0.05)
    data = build_data(config)
    assert isinstance(data.preprocessor, PretrainedTokenizer) and data.preprocessor.vocab_size <= 300
    model = build_model(config, data.preprocessor)
    assert isinstance(model, HFCausalLM)
    saved = GPT2LMHeadModel.from_pretrained(local_gpt2).state_dict()["transformer.wte.weight"]
    assert torch.equal(model.model.state_dict()["transformer.wte.weight"], saved)
    inputs, targets = data.train[0]
    logits, loss = model(inputs[None], targets[None])
    assert logits.shape[:2] == (1, 32) and torch.isfinite(loss)
    # A context longer than the model's learned positions (64) is refused before it indexes past them.
    with pytest.raises(ProjectError, match="block_size=128 is longer than the 64 positions"):
        build_model(replace(config, block_size=128), data.preprocessor)


def test_lora_fine_tunes_a_pretrained_hugging_face_model_and_exports_it_merged(
    local_gpt2: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    runs = tmp_path / "runs"
    settings = {**TINY, "runs_dir": str(runs), "model_name": str(local_gpt2), "lora_rank": "2"}
    result = run_cli("train", "--max-steps", "10", "--run-name", "adapted", *set_flags(settings))
    assert result.returncode == 0, result.stdout + result.stderr
    final = read_records(runs / "adapted")[-1]
    # rank 2 x (in + out) for c_attn, attn.c_proj, c_fc and mlp.c_proj of its one block
    assert final["trainable_parameters"] == 2 * ((32 + 96) + (32 + 32) + (32 + 128) + (128 + 32))
    # model.pt holds the adapters alone; loading builds the pretrained model again beside them.
    weights = torch.load(runs / "adapted" / "model.pt", weights_only=True)["model"]
    assert sum(weights[name].numel() for name in weights) == final["trainable_parameters"]
    _, _, adapted, _ = load_trained_model(runs / "adapted", torch.device("cpu"))
    pretrained = AutoModelForCausalLM.from_pretrained(local_gpt2).state_dict()
    name = "transformer.h.0.attn.c_attn"
    assert torch.equal(adapted.state_dict()[f"model.{name}.base.weight"], pretrained[f"{name}.weight"])
    assert torch.equal(adapted.state_dict()[f"model.{name}.lora_b"], weights[f"model.{name}.lora_b"])
    assert weights[f"model.{name}.lora_b"].abs().sum() > 0  # the adapters did train
    predictor = Predictor(runs / "adapted", "cpu")
    assert not any(isinstance(module, LoRALinear) for module in predictor.model.modules())
    assert run_cli("export", "--run", str(runs / "adapted"), "--output", str(tmp_path / "hf")).returncode == 0
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    tokens = torch.tensor([predictor.tokenizer.encode("def main(argv):")])
    with torch.no_grad():
        torch.testing.assert_close(exported(tokens).logits, predictor.model(tokens)[0])
    # Adapters on random weights would adapt nothing: one line, as for a LoRA run without a base.
    refused = run_cli("train", "--max-steps", "1", *set_flags({**settings, "pretrained": "false"}))
    assert refused.returncode == 2 and "LoRA adapts a trained model" in refused.stderr


def test_fine_tuning_with_lora_starts_from_a_run_keeps_it_frozen_and_trains_a_small_share(
    trained_run: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    tuning = {**TINY, "runs_dir": str(runs), "init_from": str(trained_run), "lora_rank": "2", "n_embd": "64"}
    result = run_cli("train", "--max-steps", "10", "--run-name", "tuned", *set_flags(tuning))
    assert result.returncode == 0, result.stdout + result.stderr
    tuned = runs / "tuned"
    # The shape and tokenizer are the base run's (n_embd=64 asked for, the base's 128 kept).
    config, base = Config.load(tuned / "config.json"), Config.load(trained_run / "config.json")
    assert (config.n_layer, config.n_embd, config.block_size) == (base.n_layer, base.n_embd, base.block_size)
    assert (tuned / "preprocessor.json").read_text() == (trained_run / "preprocessor.json").read_text()
    final = read_records(tuned)[-1]
    assert final["kind"] == "final" and final["trainable_parameters"] < 0.05 * final["parameters"]
    weights = torch.load(tuned / "model.pt", weights_only=True)["model"]
    assert all(name.endswith(("lora_a", "lora_b")) for name in weights)  # the adapters alone
    _, _, adapted, _ = load_trained_model(tuned, torch.device("cpu"))
    base_weights = torch.load(trained_run / "model.pt", weights_only=True)["model"]
    fc = adapted.blocks[0].mlp.fc
    assert torch.equal(fc.base.weight, base_weights["blocks.0.mlp.fc.weight"])  # the base, rebuilt
    assert torch.equal(fc.lora_b, weights["blocks.0.mlp.fc.lora_b"]) and fc.lora_b.abs().sum() > 0
    sampled = run_cli("predict", "--run", str(tuned), "--json", "--max-new-tokens", "4", "def ")
    assert sampled.returncode == 0, sampled.stderr
    # Predictions run the adapters folded into the frozen weights.
    merged = Predictor(tuned, "cpu").model
    assert not any(isinstance(module, LoRALinear) for module in merged.modules())
    # A LoRA run is a base too: the next run starts from its weights with the adapters merged.
    again = {**tuning, "init_from": str(tuned)}
    result = run_cli("train", "--max-steps", "2", "--run-name", "again", *set_flags(again))
    assert result.returncode == 0, result.stdout + result.stderr
    _, _, again, _ = load_trained_model(runs / "again", torch.device("cpu"))
    assert torch.equal(again.blocks[0].mlp.fc.base.weight, merged.blocks[0].mlp.fc.weight)
    # Against the base: the windows where the tuned model predicts better, and accuracy it lost.
    compared = Predictor(tuned, "cpu").against_base()
    assert 0 <= compared["win_rate"] <= 1 and -1 <= compared["accuracy_drop"] <= 1, compared
    assert Predictor(trained_run, "cpu").against_base() == {}  # trained from scratch: no base
    # A model compared with itself ties on every window and loses no accuracy.
    twin = tmp_path / "twin"
    shutil.copytree(trained_run, twin)
    settings = json.loads((twin / "config.json").read_text()) | {"init_from": str(trained_run)}
    (twin / "config.json").write_text(json.dumps(settings))
    assert Predictor(twin, "cpu").against_base() == {"win_rate": 0.5, "accuracy_drop": 0.0}
    spec = tmp_path / "spec.yaml"
    rewards = [{"text": "beats its base", "threshold": {"metric": "win_rate", "op": ">=", "value": 0.0}}]
    penalties = [{"text": "forgets", "threshold": {"metric": "accuracy_drop", "op": ">", "value": 1.0}}]
    spec.write_text(yaml.safe_dump({"id": "t", "title": "t", "rewards": rewards, "penalties": penalties}))
    gates = json.loads(run_cli("check", "--run", str(tuned), "--spec", str(spec), "--json").stdout)
    assert {gate["metric"]: gate["observed"] for gate in gates} == pytest.approx(compared)

    # A LoRA run without a run to adapt, or from one that is not there, is one line each.
    for flags in ({"lora_rank": "2"}, {"init_from": "no-such-run"}):
        refused = run_cli("train", "--max-steps", "1", *set_flags({**TINY, "runs_dir": str(runs), **flags}))
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr


def test_check_says_how_a_run_from_scratch_would_meet_the_fine_tuning_gates(
    trained_run: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    fraction = {"metric": "trainable_params_fraction", "op": "<=", "value": 0.01}
    constraints = [{"text": "Train only 1% of parameters", "threshold": fraction}]
    rewards = [{"text": "beats its base", "threshold": {"metric": "win_rate", "op": ">=", "value": 0.6}}]
    spec.write_text(yaml.safe_dump({"id": "t", "title": "t", "constraints": constraints, "rewards": rewards}))
    result = run_cli("check", "--run", str(trained_run), "--spec", str(spec))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "trainable_params_fraction: fine-tune with LoRA: train a run, then" in result.stdout
    assert "win_rate: measured on a run fine-tuned from another (--set init_from=RUN)" in result.stdout
    assert "1 gate(s) failed; 1 of 2 not measured" in result.stdout


def test_a_lora_run_saves_its_adapters_alone_and_refuses_a_base_that_changed_since(
    trained_run: Path, tmp_path: Path
) -> None:
    base, runs = tmp_path / "base", tmp_path / "runs"
    shutil.copytree(trained_run, base)
    tuning = {**TINY, "runs_dir": str(runs), "init_from": str(base), "lora_rank": "2", "eval_every": "4"}
    result = run_cli("train", "--max-steps", "4", "--run-name", "tuned", *set_flags(tuning))
    assert result.returncode == 0, result.stdout + result.stderr
    tuned = runs / "tuned"
    # Both files a run writes hold the adapters, a small share of the base's bytes.
    for name in ("model.pt", "checkpoint.pt"):
        weights = torch.load(tuned / name, weights_only=True)["model"]
        assert weights and all(key.endswith(("lora_a", "lora_b")) for key in weights), name
    assert (tuned / "model.pt").stat().st_size < 0.2 * (base / "model.pt").stat().st_size
    # --resume rebuilds the base and continues the adapters where the checkpoint left them.
    resumed = run_cli("train", "--resume", "tuned", "--max-steps", "8", *set_flags(tuning))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert read_records(tuned)[-1]["step"] == 8

    # The base trained further (here: one weight nudged) no longer fits the adapters: one line.
    saved = torch.load(base / "model.pt", weights_only=True)
    saved["model"]["blocks.0.mlp.fc.weight"][0, 0] += 0.5
    torch.save(saved, base / "model.pt")
    with pytest.raises(ProjectError, match="the frozen weights are not those any more"):
        Predictor(tuned, "cpu")
    refused = run_cli("predict", "--run", str(tuned), "--max-new-tokens", "2", "def ")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "train this run again" in refused.stderr
