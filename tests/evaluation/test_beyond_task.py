"""What LoRA changed beyond the task (--ood-data), through the real CLI, against computations one text at a time.

The next-token KL and perplexities are checked against plain transformers: AutoModelForCausalLM for the base and
a peft LoRA model of the same causal LM carrying the adapter's LoRA tensors (never lorafair's merge or its LM-head
reading); the OOD layer CKA and cosine against stats.representations on hidden states of one text at a time.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lorafair.cli import main
from lorafair.stats.representations import linear_cka, mean_cosine

from conftest import FILLER, make_adapter, make_top_layer_adapter, tiny_config, toy_rows, word_tokenizer, write_csv

OOD_ROWS = 30
OOD_SAMPLES = 20


def _ood_rows(n: int = OOD_ROWS) -> list[dict]:
    """Texts of the toy vocabulary in another order, with words it does not know ('<unk>'), of varying length."""
    import random

    rng = random.Random(11)
    words = FILLER + ["zebra", "quantum", "harbour"]
    return [{"text": " ".join(rng.choice(words) for _ in range(rng.randint(1, 16)))} for _ in range(n)]


def _causal_base(root: Path, tied: bool) -> Path:
    """A tiny Llama saved as a causal LM: lm_head.weight in the checkpoint, or tied to embed_tokens."""
    from transformers import LlamaForCausalLM

    tokenizer = word_tokenizer("decoder")
    torch.manual_seed(0)
    config = tiny_config("llama", len(tokenizer), 2, tokenizer.pad_token_id, tie_word_embeddings=tied)
    base = root / f"causal-{'tied' if tied else 'lm_head'}"
    LlamaForCausalLM(config).save_pretrained(str(base))
    tokenizer.save_pretrained(str(base))
    return base


@pytest.fixture(scope="module")
def causal(tmp_path_factory):
    root = tmp_path_factory.mktemp("causal")
    bases = {tied: _causal_base(root, tied) for tied in (False, True)}
    return {
        "bases": bases,
        "adapters": {
            False: make_adapter(bases[False], root / "adapter-all-layers", "llama"),
            True: make_top_layer_adapter(bases[True], root / "adapter-top-layer"),
        },
        "data": write_csv(toy_rows(24, seed=3), root / "data.csv"),
        "ood": write_csv(_ood_rows(), root / "ood.csv"),
    }


def _compare(adapter, data, ood, out, *extra) -> dict:
    argv = ["compare", "--adapter", str(adapter), "--data", str(data), "--ood-data", str(ood)]
    argv += ["--ood-samples", str(OOD_SAMPLES), "--variants", "B,A", "--bootstrap", "0", "--output", str(out)]
    assert main([*argv, "--quiet", *extra]) == 0
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def _texts(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def _lora_causal_lm(base: Path, adapter: Path):
    """The base causal LM with the adapter's LoRA tensors, by plain peft (the classifier head is left out)."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    saved = json.loads((adapter / "adapter_config.json").read_text())
    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=saved["r"],
        lora_alpha=saved["lora_alpha"],
        target_modules=saved["target_modules"],
        layers_to_transform=saved.get("layers_to_transform"),
    )
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)), config)
    tensors = {k: v for k, v in load_file(str(adapter / "adapter_model.safetensors")).items() if "lora_" in k}
    result = set_peft_model_state_dict(model, tensors)
    assert not [k for k in result.unexpected_keys if "lora_" in k]
    return model.eval()


def _reference_lm(base: Path, adapter: Path, texts: list[str]) -> dict:
    """Per text, alone: float64 log-softmax of each model's logits; KL and NLL at every position with a next token."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    frozen = AutoModelForCausalLM.from_pretrained(str(base)).eval()
    lora = _lora_causal_lm(base, adapter)
    kl, nll_a, nll_b = [], [], []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, truncation=True, max_length=256)["input_ids"]
            batch = torch.tensor([ids])
            log_a = torch.log_softmax(frozen(input_ids=batch).logits[0].double(), -1)[:-1]
            log_b = torch.log_softmax(lora(input_ids=batch).logits[0].double(), -1)[:-1]
            kl += (log_a.exp() * (log_a - log_b)).sum(-1).tolist()
            nll_a += [-log_a[t, ids[t + 1]].item() for t in range(len(ids) - 1)]
            nll_b += [-log_b[t, ids[t + 1]].item() for t in range(len(ids) - 1)]
    return {"kl": np.array(kl), "nll_a": np.array(nll_a), "nll_b": np.array(nll_b)}


@pytest.mark.parametrize("tied", [False, True], ids=["lm_head-all-layers", "tied-top-layer-shared-trunk"])
def test_kl_and_perplexities_equal_causal_lm_and_peft_one_text_at_a_time(causal, tied, tmp_path):
    base, adapter = causal["bases"][tied], causal["adapters"][tied]
    report = _compare(adapter, causal["data"], causal["ood"], tmp_path / "out")
    block = report["beyond_task"]
    expected_rows = np.sort(np.random.default_rng(0).choice(OOD_ROWS, size=OOD_SAMPLES, replace=False))
    assert block["data"]["indices"] == expected_rows.tolist()
    texts = [_texts(causal["ood"])[i] for i in expected_rows]
    reference = _reference_lm(base, adapter, texts)
    lm = block["lm"]
    assert block["reason"] is None
    assert lm["tokens"] == len(reference["kl"]) > 100
    assert lm["kl_mean"] == pytest.approx(reference["kl"].mean(), abs=1e-6)
    assert lm["kl_mean"] > 1e-3  # the random LoRA really moves the next-token distributions
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        assert lm["kl_per_token_quantiles"][name] == pytest.approx(np.percentile(reference["kl"], q), abs=1e-6)
    assert lm["kl_per_token_quantiles"]["max"] == pytest.approx(reference["kl"].max(), abs=1e-6)
    assert lm["perplexity_base"] == pytest.approx(np.exp(reference["nll_a"].mean()), rel=1e-6)
    assert lm["perplexity_lora"] == pytest.approx(np.exp(reference["nll_b"].mean()), rel=1e-6)
    key = "model.embed_tokens.weight" if tied else "lm_head.weight"
    assert lm["lm_head"] == {"tensor": key, "tied": tied, "vocab_size": len(word_tokenizer("decoder"))}
    lora_pass = next(p for p in report["forward_passes"] if p["kind"] == "ood_lora")
    assert lora_pass["shared_layers"] == (1 if tied else 0)  # the top-layer adapter: B's pass skips layer 0


def _layers_one_at_a_time(model, tokenizer, texts) -> np.ndarray:
    """(L + 1, n, d): hidden_states[l] of each text alone (no padding), at its last token."""
    rows = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, truncation=True, max_length=256)["input_ids"]
            states = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
            rows.append(np.stack([h[0, -1].double().numpy() for h in states]))
    return np.stack(rows, axis=1)


@pytest.mark.parametrize("arch", ["llama", "bert"])
def test_ood_layer_cka_and_cosine_equal_a_direct_computation(arch, request, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    setup = request.getfixturevalue(f"{arch}_setup")
    ood = write_csv(_ood_rows(), tmp_path / "ood.csv")
    block = _compare(setup.adapter, setup.data, ood, tmp_path / "out")["beyond_task"]
    texts = [_texts(ood)[i] for i in block["data"]["indices"]]
    tokenizer = AutoTokenizer.from_pretrained(str(setup.base))
    base = AutoModelForSequenceClassification.from_pretrained(str(setup.base), num_labels=setup.num_labels).eval()
    if arch == "bert":  # encoders are pooled at [CLS], as their head reads
        frozen = _cls_one_at_a_time(base, tokenizer, texts)
        tuned = _cls_one_at_a_time(PeftModel.from_pretrained(base, str(setup.adapter)).eval(), tokenizer, texts)
    else:
        frozen = _layers_one_at_a_time(base, tokenizer, texts)
        tuned = _layers_one_at_a_time(PeftModel.from_pretrained(base, str(setup.adapter)).eval(), tokenizer, texts)
    assert [r["layer"] for r in block["layers"]] == list(range(frozen.shape[0]))
    for record, a, b in zip(block["layers"], frozen, tuned):
        expected = linear_cka(a, b)
        assert record["cka"] == (None if expected is None else pytest.approx(expected, abs=1e-6))
        assert record["cosine"] == pytest.approx(mean_cosine(a, b), abs=1e-6)
    assert block["layers"][-1]["cka"] < 0.999
    assert block["pooling"] == ("first" if arch == "bert" else "last")
    if arch == "bert":
        assert block["lm"] is None and block["reason"] == {"kind": "lm_skipped", "reason": "encoder", "detail": None}
    else:  # the fixture's base is saved as a classifier: no lm_head.weight, embeddings not tied
        assert block["lm"] is None and block["reason"]["reason"] == "no_lm_head"


def _cls_one_at_a_time(model, tokenizer, texts) -> np.ndarray:
    rows = []
    with torch.no_grad():
        for text in texts:
            batch = tokenizer(text, truncation=True, max_length=256, return_tensors="pt")
            states = model(**batch, output_hidden_states=True).hidden_states
            rows.append(np.stack([h[0, 0].double().numpy() for h in states]))
    return np.stack(rows, axis=1)


# ------------------------------------------------------------------------- options and user errors, through the CLI
@pytest.fixture
def no_model_load(monkeypatch):
    import lorafair.models.modeling

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the failing check")

    monkeypatch.setattr(lorafair.models.modeling, "load_base_classifier", refuse)


@pytest.mark.parametrize(
    "ood, extra, message",
    [
        ("missing.csv", [], "data file not found: '{tmp}/missing.csv'"),
        ("no-text.csv", [], "text column 'text' not found in '{tmp}/no-text.csv'; columns present: sentence"),
        ("ood.csv", ["--ood-samples", "-1"], "invalid option value: --ood-samples -1 (needs >= 0)"),
        ("builtin:oanc-en:test", [], "builtin:oanc-en is one file of texts without splits; drop ':test'"),
    ],
)
def test_bad_ood_options_fail_in_one_line_before_any_model_loads(
    llama_setup, tmp_path, capsys, no_model_load, ood, extra, message
):
    write_csv([{"sentence": "a text"}], tmp_path / "no-text.csv")
    write_csv(_ood_rows(), tmp_path / "ood.csv")
    out = tmp_path / "out"
    spec = ood if ood.startswith("builtin:") else str(tmp_path / ood)
    argv = ["compare", "--adapter", str(llama_setup.adapter), "--data", str(llama_setup.data), "--ood-data", spec]
    assert main([*argv, *extra, "--output", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"lorafair: error: {message.format(tmp=tmp_path)}"]
    assert not out.exists()


def test_no_ood_wins_and_without_b_the_reason_is_recorded(llama_setup, tmp_path):
    ood = write_csv(_ood_rows(), tmp_path / "ood.csv")
    off = _compare(llama_setup.adapter, llama_setup.data, ood, tmp_path / "off", "--no-ood")
    assert "beyond_task" not in off and not [p for p in off["forward_passes"] if p["kind"].startswith("ood_")]
    argv = ["compare", "--adapter", str(llama_setup.adapter), "--data", str(llama_setup.data), "--ood-data", str(ood)]
    assert main([*argv, "--variants", "A", "--bootstrap", "0", "--output", str(tmp_path / "a"), "--quiet"]) == 0
    block = json.loads((tmp_path / "a" / "report.json").read_text(encoding="utf-8"))["beyond_task"]
    assert block["reason"] == {"kind": "ood_skipped", "reason": "no_lora_variant", "detail": None}
    assert block["layers"] == [] and block["lm"] is None and block["data"]["n"] == OOD_ROWS  # 200 asked, 30 there


def test_in_bf16_the_logits_matmul_runs_in_bf16_and_stays_near_a_float64_computation():
    """A compare in bf16 computes the LM head's logits as a bf16 causal LM does; the figures stay within bf16's
    rounding of a float64 numpy computation on the same (bf16) states and weight."""
    from lorafair.models import lm_head

    rng = np.random.default_rng(0)
    vocab, hidden, tokens = 400, 32, 120
    weight = torch.from_numpy(rng.normal(0, 0.3, (vocab, hidden)).astype(np.float32)).bfloat16()
    rows_a = {0: torch.from_numpy(rng.normal(0, 1, (tokens, hidden)).astype(np.float32)).bfloat16()}
    rows_b = {0: (rows_a[0].float() + 0.3 * torch.randn(tokens, hidden)).bfloat16()}
    ids = [rng.integers(0, vocab, tokens).tolist()]
    kl, nll_a, nll_b = lm_head.next_token_figures(rows_a, rows_b, ids, weight, dtype=torch.bfloat16)

    def log_softmax(states):
        logits = states[:-1].double().numpy() @ weight.double().numpy().T
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    log_a, log_b = log_softmax(rows_a[0]), log_softmax(rows_b[0])
    expected_kl = (np.exp(log_a) * (log_a - log_b)).sum(axis=1)
    targets = np.asarray(ids[0][1:])
    assert kl.mean() == pytest.approx(expected_kl.mean(), rel=0.02)
    assert nll_a.mean() == pytest.approx(-log_a[np.arange(tokens - 1), targets].mean(), rel=1e-3)
    assert nll_b.mean() == pytest.approx(-log_b[np.arange(tokens - 1), targets].mean(), rel=1e-3)
    fp32_kl = lm_head.next_token_figures(rows_a, rows_b, ids, weight)[0]  # the default: an fp32 matmul
    assert not np.array_equal(kl, fp32_kl)  # so the bf16 figures above did come from a bf16 matmul
