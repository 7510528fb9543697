"""How a compare picks its dtype (plan.resolve_device): the option, or on CPU with --dtype auto the measured
probe (models/dtype_probe.py), which $LORAFAIR_CPU_DTYPE forces without probing; the report states the choice."""

from __future__ import annotations

import json

import pytest

from lorafair.cli import main
from lorafair.models import dtype_probe
from lorafair.report.build import FLIP_TOLERANCE


def _compare(setup, out, *extra) -> dict:
    argv = ["compare", "--adapter", str(setup.adapter), "--data", str(setup.data), "--num-samples", "24"]
    assert main([*argv, "--bootstrap", "0", "--no-analysis", "--output", str(out), "--quiet", *extra]) == 0
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


@pytest.fixture
def no_probe(monkeypatch, tmp_path):
    monkeypatch.setenv("LORAFAIR_CACHE", str(tmp_path / "cache"))

    def refuse(*_):
        raise AssertionError("the probe ran")

    monkeypatch.setattr(dtype_probe, "measure", refuse)


@pytest.mark.parametrize("forced", ["float32", "bfloat16"])
def test_forced_cpu_dtype_through_a_compare(llama_setup, tmp_path, monkeypatch, no_probe, forced):
    monkeypatch.setenv(dtype_probe.FORCE_ENV, forced)
    report = _compare(llama_setup, tmp_path / forced)
    env = report["environment"]
    assert env["dtype"] == forced and env["dtype_choice"] == {"dtype": forced, "source": "forced", "threshold": 1.5}
    assert not (tmp_path / "cache" / dtype_probe.CACHE_FILE).exists()
    text = (tmp_path / forced / "report.md").read_text(encoding="utf-8")
    assert f"dtype {forced}, forced by $LORAFAIR_CPU_DTYPE (no probe)" in text
    low = report["fidelity"].get("bf16_vs_fp32")
    if forced == "float32":
        assert low is None
        return
    assert low["checked"] == report["fidelity"]["checked_examples"] > 0 and 0 <= low["flips"] <= low["checked"]
    fired = [c for c in report["check_records"] if c["kind"] == "dtype_flips"]
    assert fired == (
        [{"kind": "dtype_flips", "flips": low["flips"], "checked": low["checked"], "tolerance": FLIP_TOLERANCE}]
        if low["flips"] / low["checked"] > FLIP_TOLERANCE
        else []
    )


def test_an_explicit_dtype_is_the_option(llama_setup, tmp_path, monkeypatch, no_probe):
    monkeypatch.delenv(dtype_probe.FORCE_ENV, raising=False)
    report = _compare(llama_setup, tmp_path / "out", "--dtype", "float32")
    assert report["environment"]["dtype_choice"] == {"dtype": "float32", "source": "option"}


def test_auto_on_cpu_reports_the_measured_figures(llama_setup, tmp_path, monkeypatch):
    monkeypatch.setenv("LORAFAIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(dtype_probe.FORCE_ENV, raising=False)
    seconds = {"float32": 0.02, "bfloat16": 0.05}  # bf16 emulated: slower, so fp32 (the suite's tolerances)
    monkeypatch.setattr(dtype_probe, "time_op", lambda op, dtype: seconds[dtype])
    report = _compare(llama_setup, tmp_path / "out")
    choice = report["environment"]["dtype_choice"]
    assert choice["source"] == "measured" and choice["dtype"] == report["environment"]["dtype"] == "float32"
    assert choice["matmul_speedup"] == pytest.approx(0.4) == choice["attention_speedup"]
    zh = _compare(llama_setup, tmp_path / "zh", "--lang", "zh")
    assert zh["environment"]["dtype_choice"]["source"] == "cached"
    assert "取自本机 CPU 先前的探测" in (tmp_path / "zh" / "report.md").read_text(encoding="utf-8")
