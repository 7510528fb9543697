"""--trunk-reuse on tiny random Llama / BERT classifiers (conftest setups): the same training, computed once below.

The reference is always the same training with --trunk-reuse off (every step runs every layer), compared
number by number: the loss curve and every saved tensor of the adapter.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from lorafair.config import TrainConfig  # noqa: E402
from lorafair.training import seeds as seeds_mod  # noqa: E402
from lorafair.training import trunk_reuse  # noqa: E402
from lorafair.training.train import run_train, train_model  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _config(setup, output, **overrides) -> TrainConfig:
    settings = dict(
        batch_size=8,
        epochs=2,
        learning_rate=5e-3,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.2,  # drawn in the top layer: reuse must keep the random stream
        lora_layers=1,
        logging_steps=1,
        save_steps=100,
        eval_fraction=0.25,
        max_length=16,
        precision="fp32",
        quiet=True,
    )
    return TrainConfig(base_model=str(setup.base), data=str(setup.data), output=str(output), **{**settings, **overrides})


def _adapter(folder) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def _run(folder) -> dict:
    return json.loads((folder / "lorafair_run.json").read_text())


def _losses(run: dict) -> list[float]:
    return [entry["loss"] for entry in run["log_history"] if "loss" in entry]


def _assert_same_training(got, expected) -> None:
    run_got, run_expected = _run(got), _run(expected)
    assert len(_losses(run_got)) == len(_losses(run_expected)) > 5
    torch.testing.assert_close(
        torch.tensor(_losses(run_got)), torch.tensor(_losses(run_expected)), atol=1e-5, rtol=0
    )
    weights_got, weights_expected = _adapter(got), _adapter(expected)
    assert set(weights_got) == set(weights_expected)
    for key in weights_expected:
        torch.testing.assert_close(weights_got[key], weights_expected[key], atol=1e-5, rtol=0, msg=key)


def test_reuse_trains_exactly_like_every_layer_every_step_across_seeds(llama_setup, tmp_path):
    reused = seeds_mod.run_seed_runs(_config(llama_setup, tmp_path / "reuse"), [0, 1])
    plain = seeds_mod.run_seed_runs(_config(llama_setup, tmp_path / "plain", trunk_reuse="off"), [0, 1])
    for got, expected in zip(reused, plain):
        _assert_same_training(got, expected)
    first, second = (_run(folder)["trunk_reuse"] for folder in reused)
    assert first["used"] and first["exact"] and first["reason"] == "exact" and first["shared_layers"] == 1
    assert first["source"] == "computed" and second["source"] == "earlier_run"  # recorded once for both seeds
    assert first["storage"] == "memory" and first["cache"] == "stored"
    assert _run(plain[0])["trunk_reuse"]["used"] is False and _run(plain[0])["trunk_reuse"]["reason"] == "off"
