"""Every bad input a user can give: one line on stderr, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import json
import shutil

import pytest
from safetensors.torch import load_file, save_file

from lorafair.cli import main

from conftest import toy_rows, write_csv


def _copy_adapter(setup, tmp_path):
    return shutil.copytree(setup.adapter, tmp_path / "adapter")


def _no_head(setup, tmp_path):
    adapter = _copy_adapter(setup, tmp_path)
    tensors = {k: v for k, v in load_file(str(adapter / "adapter_model.safetensors")).items() if "lora_" in k}
    save_file(tensors, str(adapter / "adapter_model.safetensors"))
    return adapter


def _other_base(setup, tmp_path):
    adapter = _copy_adapter(setup, tmp_path)
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    key = next(k for k in tensors if "lora_A" in k)
    tensors[key] = tensors[key][:, :-2].contiguous()  # as if trained on a narrower model
    save_file(tensors, str(adapter / "adapter_model.safetensors"))
    return adapter


def _wrong_head(setup, tmp_path):
    adapter = _copy_adapter(setup, tmp_path)
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    key = next(k for k in tensors if k.endswith("score.weight"))
    tensors[key] = tensors[key][:, :-4].contiguous()
    save_file(tensors, str(adapter / "adapter_model.safetensors"))
    return adapter


def _with_labels(setup, tmp_path):
    adapter = _copy_adapter(setup, tmp_path)
    (adapter / "lorafair_run.json").write_text(json.dumps({"label_names": ["neg", "pos"]}))
    return adapter


CASES = {
    "adapter folder missing": (lambda s, t: t / "nope", None, "adapter folder not found"),
    "adapter_config missing": (
        lambda s, t: (_copy_adapter(s, t) / "adapter_config.json").unlink() or t / "adapter",
        None,
        "adapter_config.json' missing",
    ),
    "weights missing": (
        lambda s, t: (_copy_adapter(s, t) / "adapter_model.safetensors").unlink() or t / "adapter",
        None,
        "adapter_model.safetensors' missing",
    ),
    "no head saved": (_no_head, None, "saved no classification head"),
    "adapter for another base (LoRA)": (_other_base, None, "adapter is for another base"),
    "adapter for another base (head)": (_wrong_head, None, "score.weight"),
    "data file missing": (None, lambda s, t: t / "missing.csv", "data file not found"),
    "data unreadable": (
        None,
        lambda s, t: (t / "bad.parquet").write_bytes(b"not parquet") and t / "bad.parquet",
        "could not read data file",
    ),
    "unsupported format": (
        None,
        lambda s, t: (t / "data.xlsx").write_text("x") and t / "data.xlsx",
        "unsupported data file",
    ),
    "text column missing": (
        None,
        lambda s, t: write_csv([{"sentence": "a", "label": "pos"}], t / "d.csv"),
        "text column 'text' not found in",
    ),
    "label column missing": (
        None,
        lambda s, t: write_csv([{"text": "a", "y": "pos"}], t / "d.csv"),
        "columns present: text, y",
    ),
    "unknown labels": (
        _with_labels,
        lambda s, t: write_csv([{"text": "a", "label": "maybe"}, {"text": "b", "label": "pos"}], t / "d.csv"),
        "labels the head does not know: maybe",
    ),
    "empty data": (None, lambda s, t: write_csv([{"text": "", "label": ""}], t / "d.csv"), "no labelled rows left"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2(case, llama_setup, tmp_path, capsys):
    make_adapter, make_data, expected = CASES[case]
    adapter = make_adapter(llama_setup, tmp_path) if make_adapter else llama_setup.adapter
    data = make_data(llama_setup, tmp_path) if make_data else llama_setup.data
    out = tmp_path / "out"
    code = main(["compare", "--adapter", str(adapter), "--data", str(data), "--output", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("lorafair: error: ") and expected in err[0], err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no staging leftovers


def test_existing_output_needs_overwrite(llama_setup, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = [
        "compare",
        "--adapter",
        str(llama_setup.adapter),
        "--data",
        str(llama_setup.data),
        "--output",
        str(out),
        "--variants",
        "B,A",
        "--bootstrap",
        "50",
        "--quiet",
    ]
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"
    assert main(args + ["--overwrite"]) == 0
    assert not (out / "keep.txt").exists() and json.loads((out / "report.json").read_text())["schema_version"] == 2


def test_unknown_variant_and_bad_option(llama_setup, tmp_path, capsys):
    code = main(
        [
            "compare",
            "--adapter",
            str(llama_setup.adapter),
            "--data",
            str(llama_setup.data),
            "--variants",
            "B,Z",
            "--output",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and "unknown variant(s) Z" in capsys.readouterr().err
    assert main(["compare", "--no-such-option"]) == 2


def test_head_label_count_mismatch(llama_setup, tmp_path, capsys):
    data = write_csv(toy_rows(12, classes=("neg", "neutral", "pos")), tmp_path / "three.csv")
    code = main(
        ["compare", "--adapter", str(llama_setup.adapter), "--data", str(data), "--output", str(tmp_path / "o")]
    )
    assert code == 2 and "the head has 2 outputs" in capsys.readouterr().err


@pytest.mark.parametrize("existing", [True, False])
def test_writer_failure_rolls_back(llama_setup, tmp_path, monkeypatch, existing):
    """A renderer failing after report.json is staged: the old output stays whole, no staging folder is left."""
    import lorafair.report.write as report_mod

    out = tmp_path / "out"
    if existing:
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    staged = []

    def broken_csv(report, probs, y):
        staged.extend(p.name for p in tmp_path.iterdir() if p.name.startswith(".out"))  # report.json is in there
        raise RuntimeError("predictions.csv renderer broke")

    monkeypatch.setattr(report_mod, "predictions_csv", broken_csv)
    args = [
        "compare",
        "--adapter",
        str(llama_setup.adapter),
        "--data",
        str(llama_setup.data),
        "--output",
        str(out),
        "--variants",
        "B,A",
        "--bootstrap",
        "0",
        "--quiet",
        "--overwrite",
    ]
    with pytest.raises(RuntimeError, match="renderer broke"):  # a programming error keeps its traceback
        main(args)
    assert len(staged) == 1  # the writer did reach its staging folder before failing
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out"] if existing else [])
    if existing:
        assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
