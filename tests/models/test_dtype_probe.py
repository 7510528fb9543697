"""--dtype auto on CPU (models/dtype_probe.py): bf16 only where measured >= 1.5x faster on matmul and attention,
remembered per machine, forced by $LORAFAIR_CPU_DTYPE without a probe."""

from __future__ import annotations

import json

import pytest
import torch

from lorafair.core.errors import LorafairError
from lorafair.models import dtype_probe, modeling


@pytest.fixture
def probe_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LORAFAIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(dtype_probe.FORCE_ENV, raising=False)
    return tmp_path / "cache" / dtype_probe.CACHE_FILE


def timings(matmul: tuple, attention: tuple):
    """A timer giving constructed best-of seconds (fp32, bf16) per op, counting its calls."""
    seconds = {("matmul", "float32"): matmul[0], ("matmul", "bfloat16"): matmul[1]}
    seconds.update({("attention", "float32"): attention[0], ("attention", "bfloat16"): attention[1]})
    calls = []

    def timer(op, dtype):
        calls.append((op, dtype))
        return seconds[(op, dtype)]

    timer.calls = calls
    return timer


@pytest.mark.parametrize(
    "matmul, attention, expected",
    [
        ((0.03, 0.01), (0.02, 0.01), "bfloat16"),  # 3x and 2x: a layer 2.86x
        ((0.035, 0.01), (0.0094, 0.01), "bfloat16"),  # this AVX512-BF16 machine: matmul 3.5x, attention 0.94x: 2.48x
        ((0.012, 0.01), (0.04, 0.01), "float32"),  # matmul only 1.2x: a layer 1.29x
        ((0.015, 0.01), (0.015, 0.01), "bfloat16"),  # exactly 1.5x on both: a layer exactly 1.5x
        ((0.03, 0.01), (0.002, 0.01), "float32"),  # attention 0.2x drags a 3x matmul down to a 1.25x layer
        ((0.01, 0.03), (0.01, 0.02), "float32"),  # bf16 emulated: slower
    ],
)
def test_decision_rule_on_constructed_timings(probe_env, matmul, attention, expected):
    choice = dtype_probe.cpu_dtype(timings(matmul, attention))
    assert choice["dtype"] == expected and choice["source"] == "measured"
    assert choice["matmul_speedup"] == pytest.approx(matmul[0] / matmul[1])
    assert choice["attention_speedup"] == pytest.approx(attention[0] / attention[1])
    m, a = matmul[0] / matmul[1], attention[0] / attention[1]
    assert choice["layer_speedup"] == pytest.approx(1 / (0.9 / m + 0.1 / a))  # time shares 0.9 / 0.1, by hand
    assert choice["threshold"] == 1.5 and choice["seconds"] >= 0


def test_second_call_reads_the_file_and_a_corrupt_file_means_probing_again(probe_env):
    first_timer = timings((0.03, 0.01), (0.03, 0.01))
    first = dtype_probe.cpu_dtype(first_timer)
    assert len(first_timer.calls) == 4 and probe_env.is_file() and first["source"] == "measured"
    stored = json.loads(probe_env.read_text(encoding="utf-8"))
    assert list(stored) == [dtype_probe.machine_key()]
    again_timer = timings((0.01, 0.03), (0.01, 0.03))  # would say float32: it must not be asked
    again = dtype_probe.cpu_dtype(again_timer)
    assert again_timer.calls == [] and again["source"] == "cached"
    assert {k: again[k] for k in ("dtype", "matmul_speedup")} == {"dtype": "bfloat16", "matmul_speedup": 3.0}
    assert again["layer_speedup"] == first["layer_speedup"]  # the report words it: a cached record needs it too
    probe_env.write_text('{"truncated', encoding="utf-8")
    third_timer = timings((0.01, 0.03), (0.01, 0.03))
    third = dtype_probe.cpu_dtype(third_timer)
    assert len(third_timer.calls) == 4 and third["source"] == "measured" and third["dtype"] == "float32"
    assert json.loads(probe_env.read_text(encoding="utf-8"))[dtype_probe.machine_key()]["dtype"] == "float32"
    probe_env.write_text(json.dumps({dtype_probe.machine_key(): {"dtype": "float64"}}), encoding="utf-8")
    assert dtype_probe.cpu_dtype(timings((0.03, 0.01), (0.03, 0.01)))["source"] == "measured"  # not a probe's


def test_key_names_the_cpu_and_torch(probe_env):
    key = dtype_probe.machine_key()
    assert f"torch {torch.__version__}" in key
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
        name = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    assert key.startswith(name)


@pytest.mark.parametrize("forced", ["float32", "bfloat16"])
def test_forced_dtype_runs_no_probe(probe_env, monkeypatch, forced):
    monkeypatch.setenv(dtype_probe.FORCE_ENV, forced)
    timer = timings((0.03, 0.01), (0.03, 0.01))
    assert dtype_probe.cpu_dtype(timer) == {"dtype": forced, "source": "forced", "threshold": 1.5}
    assert timer.calls == [] and not probe_env.exists()


def test_forced_dtype_must_be_a_known_one(probe_env, monkeypatch):
    monkeypatch.setenv(dtype_probe.FORCE_ENV, "float16")
    with pytest.raises(LorafairError, match="LORAFAIR_CPU_DTYPE"):
        dtype_probe.cpu_dtype()


def test_the_real_probe_is_short_and_times_both_dtypes(probe_env):
    choice = dtype_probe.cpu_dtype()
    assert choice["source"] == "measured" and choice["dtype"] in ("float32", "bfloat16")
    assert choice["seconds"] < 10  # well under a second on an idle machine; the suite runs under load
    layer = 1 / (0.9 / choice["matmul_speedup"] + 0.1 / choice["attention_speedup"])
    want = "bfloat16" if layer >= 1.5 else "float32"
    assert choice["dtype"] == want


def test_upcast_round_trip_leaves_bf16_weights_bit_identical():
    layer = torch.nn.Linear(8, 3).to(torch.bfloat16)
    layer.register_buffer("scale", torch.randn(3).to(torch.bfloat16))
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    x = torch.randn(2, 8)
    with modeling.upcast_to_fp32(layer):
        assert layer.weight.dtype == torch.float32 == layer.scale.dtype
        inside = layer(x)
    expected = x @ before["weight"].float().T + before["bias"].float()  # the bf16 values, in fp32 arithmetic
    torch.testing.assert_close(inside, expected)
    for key, value in layer.state_dict().items():
        assert value.dtype == torch.bfloat16 and torch.equal(value, before[key])
