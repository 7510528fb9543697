"""evaluation/seed_factors: each seed's LoRA factors, read from the saved tensors, give ΔW exactly as peft merges it.

Checked against peft's own `get_delta_weight` on the attached model, for a Linear (Llama) and a Conv1D (GPT-2,
fan_in_fan_out: peft stores ΔW transposed there): the singular values and subspaces of seed_agreement's
directions equal those of numpy's SVD of peft's ΔW in the math layout (out x in).
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny_archs import build_adapter, build_base

from lorafair.evaluation import seed_factors
from lorafair.models import modeling
from lorafair.stats import seed_agreement


def _peft_deltas(base, adapter) -> dict:
    """{module: ΔW (out x in)} from peft's get_delta_weight, as stored by the base layer, turned to out x in."""
    peft_model = modeling.attach_lora(modeling.load_base_classifier(base, adapter.num_labels), adapter)
    out = {}
    for module in modeling.read_adapter(adapter.path).lora:
        path = module.rpartition(".")[0]
        layer = peft_model.get_submodule(f"base_model.model.{path}")
        delta = layer.get_delta_weight("default").detach().double().numpy()
        out[path] = delta.T if getattr(layer, "fan_in_fan_out", False) else delta
    return out


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_factors_give_peft_delta_weight(arch, llama_setup, tmp_path):
    if arch == "llama":
        base, path = llama_setup.base, llama_setup.adapter
    else:
        base = build_base("gpt2", tmp_path / "base")
        path = build_adapter("gpt2", base, tmp_path / "adapter")
    adapter = modeling.read_adapter(path)
    per_module, notes = seed_factors.lora_factors([adapter, adapter])
    expected = _peft_deltas(base, adapter)
    assert notes == [] and sorted(per_module) == sorted(expected)
    for module, [(lora_a, lora_b, scaling), _] in per_module.items():
        directions = seed_agreement.delta_directions(lora_a, lora_b, scaling)
        u, s, vt = np.linalg.svd(expected[module])
        k = directions.rank
        np.testing.assert_allclose(directions.singular, s[:k], rtol=1e-5)
        np.testing.assert_allclose(directions.left @ directions.left.T, u[:, :k] @ u[:, :k].T, atol=1e-5)
        np.testing.assert_allclose(directions.right @ directions.right.T, vt[:k].T @ vt[:k], atol=1e-5)


def test_dora_and_unshared_modules_are_left_out_with_a_record(llama_setup):
    adapter = modeling.read_adapter(llama_setup.adapter)
    fewer = modeling.read_adapter(llama_setup.adapter)
    fewer.lora = {k: v for k, v in fewer.lora.items() if ".layers.1." not in k}
    per_module, notes = seed_factors.lora_factors([adapter, fewer])
    assert len(per_module) == 4 and all(".layers.0." in m for m in per_module)
    assert notes == [{"kind": "seed_weights_unshared", "modules": 4}]  # q, k, v, o of layer 1
    dora = modeling.read_adapter(llama_setup.adapter)
    dora.config = {**dora.config, "use_dora": True}
    assert seed_factors.lora_factors([adapter, dora]) == ({}, [{"kind": "seed_weights_dora"}])
