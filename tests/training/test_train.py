"""`lorafair train` on tiny random Qwen2 / BERT classifiers built here (no downloads, a few seconds each).

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/training/test_train.py
"""

from __future__ import annotations

import argparse
import json
import math
import random
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from lorafair.core.errors import LorafairError  # noqa: E402
from lorafair.core.hashing import file_sha256  # noqa: E402
from lorafair.data.examples import write_jsonl  # noqa: E402
from lorafair.models.modeling import read_adapter  # noqa: E402
from lorafair.training.train import (  # noqa: E402
    CHECKPOINTS,
    TrainConfig,
    add_train_arguments,
    default_target_modules,
    run_train,
    train_config_from_args,
    train_model,
)

POSITIVE = ["good", "great", "fine", "nice", "lovely"]
NEGATIVE = ["bad", "awful", "poor", "sad", "boring"]
FILLER = ["the", "a", "movie", "film", "is", "was", "very", "plot", "and"]


def _toy_rows(n: int, seed: int, string_labels: bool) -> list[dict]:
    """Separable toy sentiment: every text carries one or two words of its class among fillers."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        positive = i % 2 == 0
        words = rng.sample(FILLER, rng.randint(1, 5)) + rng.sample(
            POSITIVE if positive else NEGATIVE, rng.randint(1, 2)
        )
        rng.shuffle(words)
        label = ("pos" if positive else "neg") if string_labels else int(positive)
        rows.append({"text": " ".join(words), "label": label})
    return rows


def _byte_level_bpe():
    """A tiny byte-level BPE over the toy words: what Qwen2Tokenizer (forced for model_type qwen2) can load."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([" ".join(POSITIVE + NEGATIVE + FILLER)] * 3, trainer)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>")


def _word_level():
    """A word-level tokenizer with [CLS] x [SEP] (y [SEP]) for the tiny BERT."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + POSITIVE + NEGATIVE + FILLER)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    """Qwen2ForSequenceClassification, hidden 32, 2 layers, 4 heads / 2 KV heads; no pad_token_id (like Qwen2.5)."""
    folder = tmp_path_factory.mktemp("tiny_qwen2")
    tokenizer = _byte_level_bpe()
    config = transformers.Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        eos_token_id=tokenizer.eos_token_id,
        num_labels=2,
    )
    torch.manual_seed(0)
    transformers.Qwen2ForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = _word_level()
    config = transformers.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=2,
    )
    torch.manual_seed(0)
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy_data")
    write_jsonl(_toy_rows(64, seed=1, string_labels=True), folder / "strings.jsonl")
    write_jsonl(_toy_rows(64, seed=2, string_labels=False), folder / "ints.jsonl")
    return folder


def _config(base, data, output, **overrides) -> TrainConfig:
    fast = dict(
        batch_size=8,
        max_steps=16,
        learning_rate=5e-3,
        lora_r=4,
        lora_alpha=8,
        logging_steps=1,
        save_steps=100,
        eval_fraction=0.25,
        max_length=16,
        quiet=True,
    )
    return TrainConfig(base_model=str(base), data=str(data), output=str(output), **{**fast, **overrides})


def _safetensors(path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "adapter_model.safetensors"))


@pytest.mark.parametrize("arch", ["qwen2", "bert"])
def test_training_trains_lora_and_head_only_and_saves_a_loadable_adapter(
    arch, tiny_qwen, tiny_bert, toy_data, tmp_path
):
    base, head = (tiny_qwen, "score") if arch == "qwen2" else (tiny_bert, "classifier")
    data = toy_data / ("strings.jsonl" if arch == "qwen2" else "ints.jsonl")
    out = tmp_path / "adapter"
    result = train_model(_config(base, data, out))
    assert result.output_dir == out

    # the loss is finite and goes down on the separable toy set
    losses = [entry["loss"] for entry in result.metadata.log_history if "loss" in entry]
    assert len(losses) >= 10 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3

    # only LoRA matrices and the head copy changed: every other base tensor is byte-identical
    before = transformers.AutoModelForSequenceClassification.from_pretrained(base).state_dict()
    after = result.model.state_dict()
    compared = set()
    for key, tensor in after.items():
        if ".lora_" in key or ".modules_to_save." in key:
            continue
        name = key.removeprefix("base_model.model.").replace(".base_layer", "").replace(".original_module", "")
        assert torch.equal(tensor, before[name]), f"{name} changed"
        compared.add(name)
    assert compared == set(before)
    trained_head = after[f"base_model.model.{head}.modules_to_save.default.weight"]
    assert not torch.equal(trained_head, before[f"{head}.weight"])
    assert any(t.abs().sum() > 0 for k, t in after.items() if "lora_B" in k)  # lora_B starts at zero

    # the saved files: head inside adapter_model.safetensors, base path, tokenizer, run metadata
    from safetensors import safe_open

    with safe_open(str(out / "adapter_model.safetensors"), "pt") as handle:
        keys = set(handle.keys())
    assert f"base_model.model.{head}.weight" in keys
    assert any("lora_A" in k for k in keys)
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(base.resolve())
    assert adapter_config["task_type"] == "SEQ_CLS"
    run = json.loads((out / "lorafair_run.json").read_text())
    assert run["label_names"] == (["neg", "pos"] if arch == "qwen2" else ["0", "1"])
    assert run["train_data"]["sha256"] == file_sha256(data)
    assert run["train_data"]["n"] == 48 and run["eval_data"]["n"] == len(run["eval_data"]["indices"]) == 16
    assert 0 <= run["metrics"]["eval"]["accuracy"] <= 1
    assert run["seed"] == 0 and run["versions"]["peft"] == peft.__version__
    assert (out / CHECKPOINTS / "checkpoint-16").is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no temp folder left beside it
    adapter = read_adapter(out)  # what `lorafair compare` reads
    assert adapter.head_name == head and adapter.label_names == run["label_names"]

    # plain peft reload gives the in-memory model's logits (the tokenizer comes from the adapter folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    plain = transformers.AutoModelForSequenceClassification.from_pretrained(base)
    plain.config.pad_token_id = tokenizer.pad_token_id  # a decoder base config has none; the comparison sets it
    reloaded = peft.PeftModel.from_pretrained(plain, out).eval()
    batch = tokenizer(["good movie", "the plot was very boring and sad", "nice"], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, result.model(**batch).logits)


class _CrashAfter(transformers.TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_to_the_same_adapter(tiny_qwen, toy_data, tmp_path):
    # 48 training examples / batch 8 = 6 steps per epoch: checkpoint at 5, crash at 7 (epoch 2), resume, end at 14
    settings = dict(max_steps=14, save_steps=5, lora_dropout=0.1, logging_steps=7)
    data = toy_data / "strings.jsonl"
    straight = run_train(_config(tiny_qwen, data, tmp_path / "straight", **settings))

    config = _config(tiny_qwen, data, tmp_path / "resumed", **settings)
    with pytest.raises(KeyboardInterrupt):
        train_model(config, callbacks=[_CrashAfter(7)])
    assert not (tmp_path / "resumed" / "adapter_config.json").exists()  # no half-finished adapter
    with pytest.raises(LorafairError, match="not empty"):
        run_train(config)
    with pytest.raises(LorafairError, match="learning_rate"):
        run_train(replace(config, resume=True, learning_rate=1e-3))
    resumed = run_train(replace(config, resume=True))

    assert json.loads((resumed / "lorafair_run.json").read_text())["resumed_from"] == "checkpoint-5"
    expected, got = _safetensors(straight), _safetensors(resumed)
    assert set(expected) == set(got)
    for key in expected:  # same seed and data order, restored optimizer/scheduler/RNG: equal up to float noise
        torch.testing.assert_close(got[key], expected[key], atol=1e-6, rtol=0, msg=lambda m, key=key: f"{key}: {m}")


def test_user_errors_are_one_line_lorafair_errors(tiny_qwen, toy_data, tmp_path):
    data = toy_data / "strings.jsonl"
    with pytest.raises(LorafairError, match="missing.jsonl"):
        run_train(_config(tiny_qwen, tmp_path / "missing.jsonl", tmp_path / "a"))
    write_jsonl([{"text": "good", "target": 1}, {"text": "bad", "target": 0}], tmp_path / "cols.jsonl")
    with pytest.raises(LorafairError, match="label column 'label' not found.*target"):
        run_train(_config(tiny_qwen, tmp_path / "cols.jsonl", tmp_path / "b"))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(LorafairError, match="--overwrite"):
        run_train(_config(tiny_qwen, data, tmp_path / "taken"))
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    with pytest.raises(LorafairError, match="exclude each other"):
        run_train(_config(tiny_qwen, data, tmp_path / "c", resume=True, overwrite=True))
    with pytest.raises(LorafairError, match="not among the model's linear layers.*q_proj"):
        run_train(_config(tiny_qwen, data, tmp_path / "d", target_modules="query,nonsense"))
    write_jsonl([{"text": "good", "label": 1}] * 4, tmp_path / "one.jsonl")
    with pytest.raises(LorafairError, match="single label"):
        run_train(_config(tiny_qwen, tmp_path / "one.jsonl", tmp_path / "e"))


def test_overwrite_replaces_an_existing_output(tiny_bert, toy_data, tmp_path):
    out = tmp_path / "adapter"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    run_train(_config(tiny_bert, toy_data / "ints.jsonl", out, max_steps=2, overwrite=True, eval_fraction=0))
    assert not (out / "stale.txt").exists() and (out / "adapter_model.safetensors").is_file()
    assert json.loads((out / "lorafair_run.json").read_text())["eval_data"] is None


def test_default_target_modules_by_architecture():
    def tiny(config_cls, model_cls, **extra):
        return model_cls(config_cls(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, **extra))

    qwen = tiny(
        transformers.Qwen2Config,
        transformers.Qwen2ForSequenceClassification,
        num_key_value_heads=1,
        intermediate_size=32,
    )
    bert = tiny(transformers.BertConfig, transformers.BertForSequenceClassification, intermediate_size=32)
    assert default_target_modules(qwen) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert default_target_modules(bert) == ["query", "key", "value"]
    gpt2 = transformers.GPT2ForSequenceClassification(
        transformers.GPT2Config(vocab_size=50, n_embd=16, n_layer=1, n_head=2)
    )
    with pytest.raises(LorafairError, match="'gpt2'.*--target-modules"):
        default_target_modules(gpt2)


def test_cli_options_come_from_the_config_dataclass():
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    assert "LoRA rank" in parser.format_help()
    args = parser.parse_args(
        [
            "--base-model",
            "m",
            "--data",
            "d.csv",
            "--lora-r",
            "4",
            "--target-modules",
            "q_proj,v_proj",
            "--eval-fraction",
            "0.2",
            "--resume",
        ]
    )
    config = train_config_from_args(args)
    assert config == TrainConfig(
        base_model="m", data="d.csv", lora_r=4, target_modules="q_proj,v_proj", eval_fraction=0.2, resume=True
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--data", "d.csv"])  # --base-model is required


def test_gradient_accumulation_matches_the_larger_batch(tiny_qwen, toy_data, tmp_path):
    # the classification loss is a plain mean: the Trainer must divide it by --grad-accum (not treat it as pre-scaled)
    data = toy_data / "strings.jsonl"
    settings = dict(max_steps=4, lora_dropout=0.0, eval_fraction=0)
    big = run_train(_config(tiny_qwen, data, tmp_path / "big", batch_size=8, **settings))
    accumulated = run_train(_config(tiny_qwen, data, tmp_path / "acc", batch_size=4, grad_accum=2, **settings))
    expected, got = _safetensors(big), _safetensors(accumulated)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-4, msg=lambda m, key=key: f"{key}: {m}")
    losses = [
        json.loads((out / "lorafair_run.json").read_text())["log_history"][0]["loss"] for out in (big, accumulated)
    ]
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)


def test_subsample_top_layers_and_cpu_bf16(tiny_qwen, toy_data, tmp_path):
    # --max-train-samples draws from what is left after the --eval-fraction hold-out (64 - 16 = 48 rows)
    data = toy_data / "strings.jsonl"
    out = tmp_path / "adapter"
    result = train_model(
        _config(tiny_qwen, data, out, max_steps=3, max_train_samples=20, lora_layers=1, precision="bf16")
    )
    run = json.loads((out / "lorafair_run.json").read_text())
    assert run["train_data"]["n"] == 20 and run["train_data"]["subsample_of"] == 48
    assert run["eval_data"]["n"] == 16 and run["precision"] == "bf16"
    # LoRA (and with it every gradient) only in the top layer of two; the head is trained as always
    assert run["layers_to_transform"] == [1]
    assert json.loads((out / "adapter_config.json").read_text())["layers_to_transform"] == [1]
    trainable = [n for n, p in result.model.named_parameters() if p.requires_grad]
    assert trainable and all(".layers.1." in n or ".score." in n for n in trainable)
    assert {k.split(".layers.")[1].split(".")[0] for k in _safetensors(out) if ".lora_" in k} == {"1"}

    everything = run_train(
        _config(tiny_qwen, data, tmp_path / "all", max_steps=1, max_train_samples=500, lora_layers=2)
    )
    run = json.loads((everything / "lorafair_run.json").read_text())
    assert run["train_data"]["n"] == 48 and "subsample_of" not in run["train_data"]
    assert run["layers_to_transform"] is None  # --lora-layers >= the layer count: every layer
    with pytest.raises(LorafairError, match="--lora-layers -1"):
        run_train(_config(tiny_qwen, data, tmp_path / "bad", lora_layers=-1))


def test_zero_head_init_starts_at_chance_loss_and_trains_the_head(tiny_qwen, toy_data, tmp_path):
    out = tmp_path / "adapter"
    train_model(_config(tiny_qwen, toy_data / "strings.jsonl", out, max_steps=3, head_init="zero"))
    run = json.loads((out / "lorafair_run.json").read_text())
    assert run["config"]["head_init"] == "zero"
    # zero logits on two classes: the first batch's cross-entropy is ln 2 whatever the features are
    assert run["log_history"][0]["loss"] == pytest.approx(math.log(2), abs=1e-4)
    head = [t for k, t in _safetensors(out).items() if "score" in k]
    assert head and all(t.any() for t in head)  # trained away from zero


@pytest.mark.parametrize("forced, autocast", [("bfloat16", True), ("float32", False)])
def test_precision_auto_on_cpu_follows_the_dtype_probe(monkeypatch, tmp_path, forced, autocast):
    from lorafair.models import dtype_probe
    from lorafair.training.train import _use_bf16

    monkeypatch.setenv("LORAFAIR_CACHE", str(tmp_path))
    monkeypatch.setenv(dtype_probe.FORCE_ENV, forced)
    assert _use_bf16("auto") is autocast
    assert _use_bf16("fp32") is False and _use_bf16("bf16") is True  # explicit choices are never probed
    monkeypatch.delenv(dtype_probe.FORCE_ENV)
    seconds = {"float32": 0.03, "bfloat16": 0.01}  # measured 3x faster on both: autocast
    monkeypatch.setattr(dtype_probe, "time_op", lambda op, dtype: seconds[dtype])
    assert _use_bf16("auto") is True


def _features_by_hand(base, arch: str, texts, max_length: int) -> np.ndarray:
    """The output layer's input, one example at a time with plain transformers: a decoder's last token's final
    hidden state (no padding, so the last token is the last real one), BERT's pooled output."""
    model = transformers.AutoModel.from_pretrained(str(base)).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(base))
    rows = []
    with torch.no_grad():
        for text in texts:
            out = model(**tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt"))
            rows.append(out.last_hidden_state[0, -1] if arch == "qwen2" else out.pooler_output[0])
    return torch.stack(rows).double().numpy()


def _sklearn_probe(x, y, *, intercept: bool, seed: int):
    """The probe lorafair documents (standardise, logistic regression, C by 5-fold stratified CV), by sklearn."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    search = GridSearchCV(
        make_pipeline(
            StandardScaler(with_mean=intercept),
            LogisticRegression(max_iter=5000, random_state=seed, fit_intercept=intercept),
        ),
        {"logisticregression__C": sorted(10.0 ** np.arange(-4, 3))},
        scoring="accuracy",
        cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=seed),
    )
    return search.fit(x, y)


@pytest.mark.parametrize("arch", ["qwen2", "bert"])
def test_probe_head_init_makes_the_model_compute_an_sklearn_probe_on_frozen_features(
    arch, tiny_qwen, tiny_bert, toy_data, tmp_path
):
    from lorafair.training import train as train_mod

    base = tiny_qwen if arch == "qwen2" else tiny_bert
    data = toy_data / ("strings.jsonl" if arch == "qwen2" else "ints.jsonl")
    config = _config(base, data, tmp_path / "adapter", head_init="probe", lora_dropout=0.0)
    plan = train_mod.plan_run(config)
    built = train_mod.build_model(config, plan.base, plan.splits.label_names, plan.splits)
    texts, y = plan.splits.train.texts, plan.splits.train_ids
    expected = _sklearn_probe(_features_by_hand(base, arch, texts, 16), y, intercept=arch == "bert", seed=0)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(base))
    model = built.model.eval()  # LoRA's B starts at zero: the model is the frozen base with the probe head
    with torch.no_grad():
        got = [torch.softmax(model(**tokenizer(t, return_tensors="pt")).logits[0], -1) for t in texts]
    # the tiny BERT's pooled outputs are nearly constant (feature sd ~2e-4), so the standardised probe's raw-feature
    # weights are ~1e4 and the fp32 head loses digits to cancellation: there the probabilities agree to 5e-3
    expected_probs = expected.predict_proba(_features_by_hand(base, arch, texts, 16))
    np.testing.assert_allclose(torch.stack(got).numpy(), expected_probs, atol=1e-5 if arch == "qwen2" else 5e-3, rtol=0)
    assert (torch.stack(got).numpy().argmax(1) == expected_probs.argmax(1)).all()
    probe = built.head_probe
    assert probe["layer"] == ("score" if arch == "qwen2" else "classifier")
    assert probe["intercept"] is (arch == "bert") and probe["rows"] == len(texts) == 48
    assert probe["C"] == expected.best_params_["logisticregression__C"]
    assert probe["cv_accuracy"] == pytest.approx(expected.best_score_)


def test_probe_head_init_is_recorded_and_trained_from(tiny_qwen, toy_data, tmp_path):
    out = tmp_path / "adapter"
    train_model(_config(tiny_qwen, toy_data / "strings.jsonl", out, max_steps=3, head_init="probe"))
    run = json.loads((out / "lorafair_run.json").read_text())
    assert run["config"]["head_init"] == "probe"
    assert run["head_probe"]["layer"] == "score" and run["head_probe"]["rows"] == 48
    assert 0.5 <= run["head_probe"]["train_accuracy"] <= 1.0


def test_an_invalid_head_init_is_one_line_from_the_api_and_the_cli(tiny_qwen, toy_data, tmp_path, capsys):
    from lorafair.cli import main

    data = toy_data / "strings.jsonl"
    with pytest.raises(LorafairError, match=r"^invalid option value: --head-init prob \(choose random, zero, probe\)$"):
        run_train(_config(tiny_qwen, data, tmp_path / "api", head_init="prob"))
    with pytest.raises(LorafairError, match=r"--head-init prob \(choose .*\); --precision fp16 \(choose auto, bf16"):
        _config(tiny_qwen, data, tmp_path / "api", head_init="prob", precision="fp16")
    args = ["train", "--base-model", str(tiny_qwen), "--data", str(data), "--output", str(tmp_path / "cli")]
    assert main([*args, "--head-init", "linear"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'linear'" in err and "Traceback" not in err
    assert not (tmp_path / "api").exists() and not (tmp_path / "cli").exists()  # nothing half-written


def test_probe_head_init_needs_a_known_output_layer():
    from lorafair.training.probe_head import output_layer

    with pytest.raises(LorafairError, match="--head-init probe: no known output layer"):
        output_layer(torch.nn.Sequential(torch.nn.Linear(2, 2)))
