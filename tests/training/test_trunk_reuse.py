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

pytestmark = pytest.mark.usefixtures("one_thread")


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
    return TrainConfig(
        base_model=str(setup.base), data=str(setup.data), output=str(output), **{**settings, **overrides}
    )


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
    torch.testing.assert_close(torch.tensor(_losses(run_got)), torch.tensor(_losses(run_expected)), atol=1e-5, rtol=0)
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
    assert first["storage"] == second["storage"] == "memory" and first["cache"] == "stored"
    assert first["bytes"] == second["bytes"] > 0
    assert _run(plain[0])["trunk_reuse"]["used"] is False and _run(plain[0])["trunk_reuse"]["reason"] == "off"


@pytest.fixture(scope="module")
def llama3(tmp_path_factory):
    """A tiny Llama with three layers: --lora-layers 1 leaves two frozen (k = 2), so the lower layers' pooled
    states matter too."""
    from transformers import LlamaForSequenceClassification

    from conftest import tiny_config, toy_rows, word_tokenizer, write_csv

    root = tmp_path_factory.mktemp("llama3")
    tokenizer = word_tokenizer("decoder")
    torch.manual_seed(0)
    config = tiny_config("llama", len(tokenizer), 2, tokenizer.pad_token_id, num_hidden_layers=3)
    LlamaForSequenceClassification(config).save_pretrained(str(root / "base"))
    tokenizer.save_pretrained(str(root / "base"))
    write_csv(toy_rows(48, seed=3), root / "train.csv")
    write_csv(toy_rows(40, seed=9), root / "eval.csv")

    class Setup:
        base, data, eval_data = root / "base", root / "train.csv", root / "eval.csv"

    return Setup


def test_recorded_states_are_the_frozen_layers_output_by_plain_transformers(llama3, tmp_path):
    """Independent: each training example alone through plain transformers (output_hidden_states)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lorafair.training import train as train_mod

    config = _config(llama3, tmp_path / "out")
    plan = train_mod.plan_run(config)
    built = train_mod.build_model(config, plan.base, plan.splits.label_names)
    datasets = train_mod.build_datasets(config, built, plan.splits)
    reuse = train_mod.start_trunk_reuse(config, plan, built, datasets)
    assert reuse.summary.used and reuse.summary.shared_layers == 2
    plain = AutoModelForSequenceClassification.from_pretrained(str(llama3.base)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(llama3.base))
    for i, text in enumerate(plan.splits.train.texts[:10]):
        ids = tokenizer(text, truncation=True, max_length=config.max_length, return_tensors="pt")["input_ids"]
        assert ids[0].tolist() == datasets.train[i]["input_ids"] and datasets.train[i][trunk_reuse.INDEX] == i
        with torch.no_grad():
            hidden = plain(input_ids=ids, output_hidden_states=True).hidden_states
        torch.testing.assert_close(reuse.recorded.states.rows[i], hidden[2][0], atol=1e-5, rtol=0)
        torch.testing.assert_close(torch.from_numpy(reuse.recorded.pooled.first[i, 0]), hidden[1][0, 0])
        torch.testing.assert_close(torch.from_numpy(reuse.recorded.pooled.last[i, 0]), hidden[1][0, -1])
    reuse.close()


@pytest.mark.parametrize("probe_samples", [2000, 20])  # every training row; a sample (found by row digests)
def test_a_compare_after_training_runs_only_the_top_layers_on_the_training_rows(
    llama3, tmp_path, monkeypatch, probe_samples
):
    import lorafair
    from lorafair.evaluation import analysis_pass

    probe_layers = []  # the A1 probe pass's pooled states of every layer, as the analysis receives them
    original = analysis_pass.Collector.probe_data

    def keep_layers(self, encoded, labels, result, C):
        probe_layers.append(result.layers.copy())
        return original(self, encoded, labels, result, C)

    monkeypatch.setattr(analysis_pass.Collector, "probe_data", keep_layers)
    adapter = run_train(_config(llama3, tmp_path / "adapter"))
    assert _run(adapter)["trunk_reuse"]["cache"] == "stored"
    options = dict(adapter=str(adapter), data=str(llama3.eval_data), variants="A,A1,B", bootstrap=0, num_samples=0)
    options["probe_samples"] = probe_samples
    reused = lorafair.compare(**options)
    fresh = lorafair.compare(**options, no_cache=True)
    probe = {p["kind"]: p for p in reused.report["forward_passes"]}["frozen_probe"]
    assert probe["trained_trunk_layers"] == 2 and probe["cached"] is False
    assert probe["examples"] == min(probe_samples, 36)
    assert "trained_trunk_layers" not in {p["kind"]: p for p in fresh.report["forward_passes"]}["frozen_probe"]
    np_testing = pytest.importorskip("numpy").testing
    np_testing.assert_allclose(reused.probs["A1"], fresh.probs["A1"], atol=1e-5)
    assert len(probe_layers) == 2 and probe_layers[0].shape[0] == 4  # embeddings + 3 layers
    np_testing.assert_allclose(probe_layers[0], probe_layers[1], atol=1e-5)
    _assert_close_numbers(reused.report["variants"]["A1"]["metrics"], fresh.report["variants"]["A1"]["metrics"])
    assert reused.report.get("analysis") and fresh.report.get("analysis")
    _assert_close_numbers(reused.report["analysis"], fresh.report["analysis"])


def _assert_close_numbers(got, expected, path="analysis") -> None:
    """Every number of the layer-wise analysis (it pools the replayed pass's lower layers from the training)."""
    if isinstance(expected, dict):
        assert set(got) == set(expected), path
        for key in expected:
            _assert_close_numbers(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), path
        for i, (a, b) in enumerate(zip(got, expected)):
            _assert_close_numbers(a, b, f"{path}[{i}]")
    elif "seconds" in path or "bytes" in path:  # timings and memory of the passes differ, by design
        return
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, abs=1e-4), path
    else:
        assert got == expected, path


def test_bert_applies_dropout_below_so_auto_leaves_reuse_off_and_on_forces_it(bert_setup, tmp_path):
    auto = run_train(_config(bert_setup, tmp_path / "auto", max_steps=2))
    summary = _run(auto)["trunk_reuse"]
    assert summary["used"] is False and summary["reason"] == "frozen_dropout" and summary["mode"] == "auto"
    assert any("embeddings.dropout" in d for d in summary["dropout"])
    assert any("attention_probs_dropout_prob" in d for d in summary["dropout"])
    forced = run_train(_config(bert_setup, tmp_path / "on", max_steps=2, trunk_reuse="on"))
    summary = _run(forced)["trunk_reuse"]
    assert summary["used"] is True and summary["exact"] is False and summary["reason"] == "forced"


def test_states_beyond_the_memory_bound_are_spilled_to_disk_with_the_same_result(llama_setup, tmp_path, monkeypatch):
    expected = run_train(_config(llama_setup, tmp_path / "memory", max_steps=8))
    monkeypatch.setenv(trunk_reuse.BYTES_ENV, "1000")
    monkeypatch.setenv("LORAFAIR_FEATURE_CACHE", str(tmp_path / "empty-cache"))  # not the first run's entry
    spilled_folders = []
    original = trunk_reuse._remove
    monkeypatch.setattr(trunk_reuse, "_remove", lambda folder: (spilled_folders.append(folder), original(folder)))
    got = run_train(_config(llama_setup, tmp_path / "disk", max_steps=8))
    summary = _run(got)["trunk_reuse"]
    assert summary["storage"] == "disk" and summary["bound_bytes"] == 1000 and summary["bytes"] > 1000
    assert summary["cache"] == "too_large"
    assert spilled_folders and all(f is not None and not f.exists() for f in spilled_folders)  # removed at the end
    assert not list(tmp_path.glob(".lorafair-trunk-*"))
    _assert_same_training(got, expected)


class _CrashAfter:
    def __new__(cls, step):
        from transformers import TrainerCallback

        class Crash(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == step:
                    raise KeyboardInterrupt

        return Crash()


def test_an_interrupted_run_with_reuse_resumes_to_the_same_adapter(llama_setup, tmp_path):
    settings = dict(max_steps=10, save_steps=4)
    straight = run_train(_config(llama_setup, tmp_path / "straight", trunk_reuse="off", **settings))
    config = _config(llama_setup, tmp_path / "resumed", **settings)
    with pytest.raises(KeyboardInterrupt):
        train_model(config, callbacks=[_CrashAfter(6)])
    resumed = run_train(replace(config, resume=True))
    run = _run(resumed)
    assert run["resumed_from"] == "checkpoint-4" and run["trunk_reuse"]["used"]
    assert run["trunk_reuse"]["source"] == "feature_cache"  # the interrupted run stored them
    weights_got, weights_expected = _adapter(resumed), _adapter(straight)
    for key in weights_expected:
        torch.testing.assert_close(weights_got[key], weights_expected[key], atol=1e-5, rtol=0, msg=key)


def test_cli_no_trunk_reuse_is_trunk_reuse_off():
    from lorafair.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["train", "--base-model", "m", "--data", "d"]).trunk_reuse == "auto"
    assert parser.parse_args(["train", "--base-model", "m", "--data", "d", "--no-trunk-reuse"]).trunk_reuse == "off"
    assert parser.parse_args(["train", "--base-model", "m", "--data", "d", "--trunk-reuse", "on"]).trunk_reuse == "on"


def test_decide_reasons_on_tiny_models():
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    def qwen(**extra):
        config = Qwen2Config(
            vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2, **extra
        )
        return Qwen2ForSequenceClassification(config)

    model = qwen()
    assert trunk_reuse.decide("auto", model, [2], "right").reason == "exact"
    assert trunk_reuse.decide("auto", model, None, "right").reason == "all_layers"
    assert trunk_reuse.decide("off", model, [2], "right").used is False
    assert trunk_reuse.decide("auto", model, [2], "left").reason == "left_padding"
    dropping = trunk_reuse.decide("auto", qwen(attention_dropout=0.1), [2], "right")
    assert (
        dropping.used is False and dropping.reason == "frozen_dropout" and dropping.dropout == ["attention_dropout=0.1"]
    )
    forced = trunk_reuse.decide("on", qwen(attention_dropout=0.1), [2], "right")
    assert forced.used and forced.exact is False
