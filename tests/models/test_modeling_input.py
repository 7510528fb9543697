"""Adapters lorafair must refuse in one line (another task type, pickled weights) and bases whose head it replaces.

.venv/bin/python -m pytest -q tests/models/test_modeling_input.py
"""

from __future__ import annotations

import csv
import io
import json
import logging
import pickle
import shutil

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from lorafair.cli import main  # noqa: E402
from lorafair.core.errors import LorafairError  # noqa: E402
from lorafair.models import modeling  # noqa: E402

from conftest import TARGETS, toy_rows, write_csv  # noqa: E402


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _compare(setup, adapter, out, capsys, *extra):
    argv = ["compare", "--adapter", str(adapter), "--base-model", str(setup.base), "--data", str(setup.data)]
    return _run([*argv, "--output", str(out), "--variants", "B,A", "--bootstrap", "50", "--quiet", *extra], capsys)


def _one_error_line(code, err) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("lorafair: error: "), err
    return lines[0]


def _copy_adapter(setup, target):
    return shutil.copytree(setup.adapter, target)


# ----------------------------------------------------------------------------- adapters of another task type
def _causal_lm_adapter(setup, out, *, head_saved: bool):
    """A CAUSAL_LM adapter saved by plain peft on the tiny Llama; `head_saved`: with modules_to_save=["score"]."""
    from transformers import AutoConfig, LlamaForCausalLM

    torch.manual_seed(5)
    config = AutoConfig.from_pretrained(str(setup.base))
    model = LlamaForCausalLM(config)
    if head_saved:  # peft then saves a 2-row `score` too, so "no head saved" alone would not refuse it
        model.score = torch.nn.Linear(config.hidden_size, 2, bias=False)
    config = peft.LoraConfig(
        task_type="CAUSAL_LM",
        r=4,
        lora_alpha=8,
        target_modules=TARGETS["llama"],
        modules_to_save=["score"] if head_saved else None,
    )
    model = peft.get_peft_model(model, config)
    model.peft_config["default"].base_model_name_or_path = str(setup.base)
    model.save_pretrained(str(out))
    return out


@pytest.mark.parametrize("head_saved", [False, True], ids=["plain", "modules_to_save-score"])
def test_causal_lm_adapter_is_refused_in_one_line(llama_setup, tmp_path, capsys, head_saved):
    adapter = _causal_lm_adapter(llama_setup, tmp_path / "causal", head_saved=head_saved)
    assert json.loads((adapter / "adapter_config.json").read_text())["task_type"] == "CAUSAL_LM"
    if head_saved:
        from safetensors import safe_open

        with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as handle:
            assert "base_model.model.score.weight" in set(handle.keys())
    out = tmp_path / "out"
    code, _, err = _compare(llama_setup, adapter, out, capsys)
    line = _one_error_line(code, err)
    assert "CAUSAL_LM" in line and "SEQ_CLS" in line and "lorafair train" in line
    assert not out.exists()


@pytest.mark.parametrize("task_type", ["TOKEN_CLS", "FEATURE_EXTRACTION", "CAUSAL_LM"])
def test_task_type_is_checked_before_any_weights_are_read(llama_setup, tmp_path, task_type):
    adapter = _copy_adapter(llama_setup, tmp_path / "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "task_type": task_type}))
    (adapter / "adapter_model.safetensors").unlink()  # the task type alone decides: no weights file needed
    with pytest.raises(LorafairError, match=task_type):
        modeling.read_adapter(adapter)


def test_adapter_without_task_type_is_compared_by_its_saved_head(llama_setup, tmp_path, capsys):
    adapter = _copy_adapter(llama_setup, tmp_path / "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text())
    config.pop("task_type")  # as older peft versions left it
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    read = modeling.read_adapter(adapter)
    assert read.head_name == "score" and read.num_labels == 2 and read.lora
    code, _, err = _compare(llama_setup, adapter, tmp_path / "untyped", capsys)
    assert code == 0, err
    code, _, err = _compare(llama_setup, llama_setup.adapter, tmp_path / "typed", capsys)
    assert code == 0, err
    assert _predictions(tmp_path / "untyped") == _predictions(tmp_path / "typed")


# ----------------------------------------------------------------------------- pickled weights are never loaded
class _Bomb:
    """Unpickling it opens (creates) `marker` for writing: proof that a pickle was loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant_pickle(adapter, marker):
    (adapter / "adapter_model.bin").write_bytes(pickle.dumps({"base_model.model.score.weight": _Bomb(marker)}))


@pytest.fixture
def torch_loads(monkeypatch):
    """Every call of torch.load during the test (peft reads adapter_model.bin with it)."""
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(args[0] if args else kwargs.get("f"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    return calls


def test_the_pickle_bomb_is_armed(tmp_path):
    marker = tmp_path / "armed"
    _plant_pickle(tmp_path, marker)
    pickle.loads((tmp_path / "adapter_model.bin").read_bytes())
    assert marker.exists()  # so its absence below means it was never unpickled


def _predictions(out) -> list[dict]:
    with open(out / "predictions.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_stray_pickle_beside_safetensors_is_never_loaded(llama_setup, tmp_path, capsys, torch_loads):
    adapter = _copy_adapter(llama_setup, tmp_path / "adapter")
    marker = tmp_path / "unpickled"
    _plant_pickle(adapter, marker)
    code, _, err = _compare(llama_setup, adapter, tmp_path / "stray", capsys)
    assert code == 0, err
    assert not marker.exists() and torch_loads == []
    code, _, err = _compare(llama_setup, llama_setup.adapter, tmp_path / "clean", capsys)
    assert code == 0, err
    assert _predictions(tmp_path / "stray") == _predictions(tmp_path / "clean")  # every probability, as repr
    stray, clean = (json.loads((tmp_path / name / "report.json").read_text()) for name in ("stray", "clean"))
    for variant in ("A", "B"):
        assert stray["variants"][variant]["metrics"] == clean["variants"][variant]["metrics"]
        assert stray["variants"][variant]["head_sha256"] == clean["variants"][variant]["head_sha256"]


def test_adapter_with_only_a_pickle_is_refused_in_one_line(llama_setup, tmp_path, capsys, torch_loads):
    adapter = _copy_adapter(llama_setup, tmp_path / "adapter")
    (adapter / "adapter_model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    _plant_pickle(adapter, marker)
    out = tmp_path / "out"
    code, _, err = _compare(llama_setup, adapter, out, capsys)
    line = _one_error_line(code, err)
    assert "adapter_model.bin" in line and "safetensors" in line and "safe_serialization=True" in line
    assert not out.exists() and not marker.exists() and torch_loads == []


def test_peft_never_sees_the_pickle_even_if_the_safetensors_file_goes(llama_setup, tmp_path, torch_loads):
    """peft falls back to adapter_model.bin when the safetensors file is missing; lorafair gives it no .bin to find."""
    adapter = _copy_adapter(llama_setup, tmp_path / "adapter")
    marker = tmp_path / "unpickled"
    _plant_pickle(adapter, marker)
    read = modeling.read_adapter(adapter)
    (adapter / "adapter_model.safetensors").unlink()  # between reading the adapter and peft loading it
    model = modeling.load_base_classifier(llama_setup.base, read.num_labels, adapter=read)
    with pytest.raises(Exception):  # noqa: B017 - peft finds no weights at all; the point is what it did not load
        modeling.attach_lora(model, read)
    assert not marker.exists() and torch_loads == []


# ----------------------------------------------------------------------------- a base saved for another label count
@pytest.fixture(scope="module")
def three_labels(tmp_path_factory):
    folder = tmp_path_factory.mktemp("three-labels")
    return write_csv(toy_rows(48, seed=4, classes=("neg", "neutral", "pos")), folder / "three.csv")


def _train_argv(base, data, out) -> list[str]:
    argv = ["train", "--base-model", str(base), "--data", str(data), "--output", str(out), "--max-steps", "2"]
    fast = ["--batch-size", "8", "--max-length", "16", "--lora-r", "4", "--lora-alpha", "8", "--learning-rate", "5e-3"]
    return [*argv, *fast, "--eval-fraction", "0", "--save-steps", "100", "--quiet"]


@pytest.fixture(scope="module")
def three_label_adapter(llama_setup, three_labels, tmp_path_factory):
    """`lorafair train` on 3-label data from the tiny Llama saved as a 2-label classifier: (adapter, its log)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("lorafair")
    logger.addHandler(handler)
    try:
        out = tmp_path_factory.mktemp("three-label-train") / "adapter"
        code = main(_train_argv(llama_setup.base, three_labels, out))
    finally:
        logger.removeHandler(handler)
    assert code == 0
    return out, stream.getvalue()


def test_train_replaces_a_two_label_head_for_three_labels(llama_setup, three_label_adapter):
    from safetensors.torch import load_file

    adapter, log_text = three_label_adapter
    base_head = load_file(str(llama_setup.base / "model.safetensors"))["score.weight"]
    assert base_head.shape[0] == 2  # the base really is a 2-label classifier
    saved = load_file(str(adapter / "adapter_model.safetensors"))["base_model.model.score.weight"]
    assert saved.shape == (3, base_head.shape[1])
    run = json.loads((adapter / "lorafair_run.json").read_text())
    assert run["head_replaced"] == {"base_labels": 2, "labels": 3}
    assert run["label_names"] == ["neg", "neutral", "pos"]
    replaced = [line for line in log_text.splitlines() if "head" in line and "replaced" in line]
    assert len(replaced) == 1 and "2-label" in replaced[0] and "3-label" in replaced[0], log_text


def test_train_on_the_base_label_count_records_no_replacement(llama_setup, tmp_path, capsys):
    code, _, err = _run(_train_argv(llama_setup.base, llama_setup.data, tmp_path / "adapter"), capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "adapter" / "lorafair_run.json").read_text())["head_replaced"] is None
    assert "replaced" not in err


def _plain_peft_logits(base, adapter, texts, num_labels):
    """B as plain peft builds it on the base loaded for `num_labels` outputs, one example at a time (no padding)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(adapter))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base), num_labels=num_labels, ignore_mismatched_sizes=True
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    reference = peft.PeftModel.from_pretrained(model, str(adapter)).eval()
    with torch.no_grad():
        return torch.cat([reference(**tokenizer(text, return_tensors="pt")).logits for text in texts])


def test_compare_three_label_adapter_on_a_two_label_base(llama_setup, three_labels, three_label_adapter, tmp_path):
    from lorafair.models import inference

    adapter, _ = three_label_adapter
    with open(three_labels, encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    expected = _plain_peft_logits(llama_setup.base, adapter, texts, 3)

    out = tmp_path / "out"
    argv = ["compare", "--adapter", str(adapter), "--data", str(three_labels), "--output", str(out)]
    assert main([*argv, "--variants", "B,A", "--bootstrap", "50", "--quiet"]) == 0
    rows = _predictions(out)
    assert rows and len(rows) <= len(texts)
    for row in rows:  # the CLI's B probabilities: softmax of plain peft's logits for that row of the data
        probs = [float(row[f"prob_B_{name}"]) for name in ("neg", "neutral", "pos")]
        reference = torch.softmax(expected[int(row["index"])].double(), dim=-1)
        torch.testing.assert_close(torch.tensor(probs, dtype=torch.float64), reference, atol=1e-5, rtol=1e-4)

    # and B's logits themselves, as lorafair builds B on the 2-label base
    read = modeling.read_adapter(adapter)
    tokenizer = modeling.load_tokenizer(adapter, llama_setup.base)
    model = modeling.load_base_classifier(llama_setup.base, read.num_labels, adapter=read)
    modeling.ensure_pad_token(tokenizer, model)
    modeling.install_head(model, read)
    merged = modeling.merge_lora(model, read)
    encoded = inference.tokenize(tokenizer, texts, max_length=64)
    batches = inference.length_sorted_batches(encoded.lengths, 5)
    ours = inference.run_pass(merged, encoded, batches, pad_token_id=tokenizer.pad_token_id, quiet=True).logits
    torch.testing.assert_close(torch.from_numpy(ours), expected, atol=1e-4, rtol=1e-4)


def _base_with_wrong_vocab(setup, folder):
    """The tiny Llama base whose config.json promises one more token than its embedding holds."""
    base = shutil.copytree(setup.base, folder)
    config = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "vocab_size": config["vocab_size"] + 1}))
    return base


def test_train_names_a_mismatched_tensor_outside_the_head(llama_setup, tmp_path, capsys):
    base = _base_with_wrong_vocab(llama_setup, tmp_path / "base")
    out = tmp_path / "adapter"
    line = _one_error_line(*_run(_train_argv(base, llama_setup.data, out), capsys)[::2])
    assert "model.embed_tokens.weight" in line
    assert not (out / "adapter_config.json").exists()


def test_compare_names_a_mismatched_tensor_outside_the_head(llama_setup, tmp_path, capsys):
    base = _base_with_wrong_vocab(llama_setup, tmp_path / "base")
    out = tmp_path / "out"
    argv = [
        "compare",
        "--adapter",
        str(llama_setup.adapter),
        "--base-model",
        str(base),
        "--data",
        str(llama_setup.data),
    ]
    line = _one_error_line(*_run([*argv, "--output", str(out), "--quiet"], capsys)[::2])
    assert "model.embed_tokens.weight" in line
    assert not out.exists()
