"""ΔW, its norm, effective rank and intruder dimensions against plain peft merges and direct numpy SVDs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from lorafair.evaluation import analysis_pass as analysis_run
from lorafair.models import modeling
from lorafair.stats import weight_delta


def _tiny_base(arch: str):
    from transformers import GPT2Config, GPT2ForSequenceClassification, LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    if arch == "gpt2":
        return GPT2ForSequenceClassification(
            GPT2Config(
                vocab_size=40,
                n_embd=32,
                n_layer=2,
                n_head=4,
                n_positions=64,
                num_labels=2,
                pad_token_id=0,
                bos_token_id=1,
                eos_token_id=1,
            )
        )
    return LlamaForSequenceClassification(
        LlamaConfig(
            vocab_size=40,
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            num_labels=2,
            pad_token_id=0,
        )
    )


CASES = {
    "llama": ("llama", dict(target_modules=["q_proj", "v_proj", "down_proj"])),
    "llama-rslora": ("llama", dict(target_modules=["q_proj", "o_proj"], use_rslora=True)),
    "llama-patterns": (
        "llama",
        dict(
            target_modules=["q_proj", "v_proj", "up_proj"],
            rank_pattern={"v_proj": 2, "layers.1.self_attn.q_proj": 6},
            alpha_pattern={"up_proj": 3},
        ),
    ),
    "llama-top-layer": ("llama", dict(target_modules=["q_proj", "k_proj"], layers_to_transform=[2])),
    "gpt2-conv1d": ("gpt2", dict(target_modules=["c_attn", "c_proj"], fan_in_fan_out=True)),
}


def _adapter(tmp_path, case: str, b_std: float = 0.3):
    """(base model, saved adapter folder, {module: peft-merged W - W in stored layout}) for one case."""
    from peft import LoraConfig, TaskType, get_peft_model

    arch, extra = CASES[case]
    base = _tiny_base(arch)
    original = {name: p.detach().clone() for name, p in base.named_parameters()}
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, init_lora_weights=False, **extra)
    peft_model = get_peft_model(copy.deepcopy(base), config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, b_std)
    folder = tmp_path / case
    peft_model.save_pretrained(str(folder))
    merged = peft_model.merge_and_unload()
    deltas = {}
    for name, param in merged.named_parameters():
        if name.endswith(".weight") and not torch.equal(param, original[name]) and "score" not in name:
            deltas[name[: -len(".weight")]] = (param.detach().double() - original[name].double()).numpy()
    return base, folder, deltas


def _direct_stats(w_stored: np.ndarray, delta: np.ndarray, conv1d: bool) -> dict:
    """The definitions of the issue, written with plain numpy SVDs on the math layout (out x in)."""
    w = w_stored.T if conv1d else w_stored
    d = delta.T if conv1d else delta
    s = np.linalg.svd(d, compute_uv=False)
    energy = np.cumsum(s**2) / np.sum(s**2)
    u_base = np.linalg.svd(w, full_matrices=False)[0]
    u_new = np.linalg.svd(w + d, full_matrices=False)[0][:, :10]
    return {
        "delta_norm": np.linalg.norm(d),
        "delta_norm_ratio": np.linalg.norm(d) / np.linalg.norm(w),
        "effective_rank": int(np.argmax(energy >= 0.9) + 1),
        "intruders": int(np.sum(np.abs(u_base.T @ u_new).max(axis=0) < 0.5)),
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_weight_records_equal_peft_merge_and_direct_svds(tmp_path, case):
    base, folder, deltas = _adapter(tmp_path, case)
    records, notes = analysis_run.weight_records(base, modeling.read_adapter(folder), max_dim=None)
    assert notes == []
    assert sorted(r["module"] for r in records) == sorted(deltas)  # exactly the adapted modules
    modules = dict(base.named_modules())
    for record in records:
        conv1d = type(modules[record["module"]]).__name__ == "Conv1D"
        w = modules[record["module"]].weight.detach().double().numpy()
        expected = _direct_stats(w, deltas[record["module"]], conv1d)
        assert record["delta_norm"] == pytest.approx(expected["delta_norm"], rel=1e-5)
        assert record["delta_norm_ratio"] == pytest.approx(expected["delta_norm_ratio"], rel=1e-5)
        assert record["effective_rank"] == expected["effective_rank"]
        assert record["intruders"] == expected["intruders"]
    assert sum(r["intruders"] for r in records) > 0  # big random deltas do create new directions


@pytest.mark.parametrize("case", ["llama-patterns", "gpt2-conv1d", "llama-rslora"])
def test_delta_weight_is_exactly_what_peft_merges(tmp_path, case):
    base, folder, deltas = _adapter(tmp_path, case)
    adapter = modeling.read_adapter(folder)
    modules = dict(base.named_modules())
    for path, (lora_a, lora_b) in analysis_run.adapted_modules(adapter).items():
        conv1d = type(modules[path]).__name__ == "Conv1D"
        scaling = weight_delta.lora_scaling(adapter.config, path, int(lora_a.shape[0]))
        ours = weight_delta.delta_weight(lora_a.numpy(), lora_b.numpy(), scaling, fan_in_fan_out=conv1d)
        np.testing.assert_allclose(ours, deltas[path], atol=2e-6)


def test_zero_lora_gives_zero_ratios_and_no_intruders(tmp_path):
    base, folder, deltas = _adapter(tmp_path, "llama", b_std=0.0)
    assert deltas == {}
    records, _ = analysis_run.weight_records(base, modeling.read_adapter(folder), max_dim=None)
    assert len(records) == 9  # 3 layers x 3 target modules, all listed although unchanged
    assert all(r["delta_norm_ratio"] == 0.0 and r["effective_rank"] == 0 and r["intruders"] == 0 for r in records)


def test_max_dim_skips_intruders_and_says_so(tmp_path):
    base, folder, _ = _adapter(tmp_path, "llama")
    records, notes = analysis_run.weight_records(base, modeling.read_adapter(folder), max_dim=20)
    skipped = [r["module"] for r in records if r["intruders"] is None]
    assert skipped == [r["module"] for r in records if min(r["shape"]) > 20]  # q_proj 32x32, down_proj 32x48
    assert 0 < len(skipped) < len(records)  # v_proj (16 x 32) is still counted
    for r in records:
        if r["module"] in skipped:
            assert r["intruders_skipped"] == {"smaller_side": min(r["shape"]), "max_dim": 20}
    assert all(r["effective_rank"] >= 1 for r in records)
    assert notes == [
        {"kind": "analysis_intruders_skipped", "skipped": len(skipped), "modules": len(records), "max_dim": 20}
    ]


@pytest.mark.parametrize("shape", [(12, 30), (30, 12)])
def test_left_singular_vectors_match_numpy_svd(shape):
    m = np.random.default_rng(0).normal(size=shape)
    u = np.linalg.svd(m, full_matrices=False)[0]
    ours = weight_delta.left_singular_vectors(m)
    np.testing.assert_allclose(np.abs(np.sum(ours * u, axis=0)), 1.0, atol=1e-8)  # equal up to sign
    top = weight_delta.left_singular_vectors(m, top=3)
    np.testing.assert_allclose(np.abs(top), np.abs(u[:, :3]), atol=1e-8)


def test_an_orthogonal_rank_one_update_is_one_intruder():
    rng = np.random.default_rng(1)
    u, _, vt = np.linalg.svd(rng.normal(size=(20, 20)))
    w = u[:, :19] @ np.diag(np.linspace(5, 1, 19)) @ vt[:19]  # rank 19: u[:, 19] is a direction W never writes
    update = 50.0 * np.outer(u[:, 19], vt[0])
    assert weight_delta.count_intruders(w, w + update) == 1
    assert weight_delta.count_intruders(w, w) == 0


@pytest.mark.parametrize("scale", [0.0, 0.3, 1.0, 3.0, 30.0])
def test_screened_intruder_count_equals_the_full_comparison(scale):
    """The screen (leading 40 of W's vectors + the energy bound) decides exactly as all of W's vectors do."""
    rng = np.random.default_rng(int(scale * 10))
    w = rng.normal(size=(64, 96)) * np.linspace(3, 0.1, 96)  # a spread of singular values, like trained weights
    updated = w + scale * rng.normal(size=(64, 4)) @ rng.normal(size=(4, 96))
    u_base = np.linalg.svd(w, full_matrices=False)[0]
    u_new = np.linalg.svd(updated, full_matrices=False)[0][:, :10]
    expected = int(np.sum(np.abs(u_base.T @ u_new).max(axis=0) < 0.5))
    assert weight_delta.count_intruders(w, updated) == expected
    assert weight_delta.count_intruders(w, updated, screen=64) == expected  # no screen: all vectors at once


def test_effective_rank_counts_values_holding_90_percent_of_the_energy():
    assert weight_delta.effective_rank([3.0, 1.0, 1.0]) == 2  # 9/11 = 0.82 < 0.9 <= 10/11
    assert weight_delta.effective_rank([1.0, 1e-9]) == 1
    assert weight_delta.effective_rank([0.0, 0.0]) == 0


@pytest.mark.parametrize(
    "module",
    [
        "model.layers.1.self_attn.q_proj",
        "model.layers.11.self_attn.q_proj",
        "model.layers.0.mlp.up_proj",
        "model.layers.0.self_attn.k_proj",
    ],
)
def test_pattern_matching_follows_peft(module):
    from peft.utils.other import get_pattern_key

    patterns = {"layers.1.self_attn.q_proj": 6, "up_proj": 3}
    key = get_pattern_key(patterns.keys(), module)
    assert weight_delta.pattern_value(patterns, module, 8) == patterns.get(key, 8)
