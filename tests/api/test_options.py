"""lorafair.api.options: keyword options -> configs, and docstrings written from the fields' help text."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

import lorafair
from lorafair.api.options import make_config
from lorafair.config import CompareConfig, TrainConfig


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    "function, config_cls", [("compare", CompareConfig), ("sweep", CompareConfig), ("train", TrainConfig)]
)
def test_docstrings_document_every_field_with_its_help_text(function, config_cls):
    doc = _flat(inspect.getdoc(getattr(lorafair, function)))
    for f in dataclasses.fields(config_cls):
        entry = f"{f.name} ({f.type}, " + ("required)" if f.metadata.get("required") else f"default {f.default!r})")
        assert entry in doc, entry
        assert _flat(f.metadata["help"]) in doc, f.name
    assert doc.index("adapter (" if config_cls is CompareConfig else "base_model (") < doc.index("seed (")


def test_keywords_override_a_config_object_and_paths_become_strings(tmp_path):
    base = CompareConfig(adapter="a", data="d.csv", num_samples=10)
    cfg = make_config(CompareConfig, base, {"num_samples": 20, "adapter": [tmp_path / "x", Path("y")]}, "compare")
    assert cfg.num_samples == 20 and cfg.adapter == [str(tmp_path / "x"), "y"] and cfg.data == "d.csv"
    assert base.num_samples == 10  # the caller's object is left alone
    assert make_config(CompareConfig, base, {}, "compare") is base


def test_import_lorafair_exports_the_api_lazily():
    assert {"compare", "sweep", "train", "demo", "CompareResult", "LorafairError"} <= set(dir(lorafair))
    assert lorafair.compare is lorafair.api.compare and lorafair.TrainResult is lorafair.api.TrainResult
    with pytest.raises(AttributeError, match="no attribute 'comparee'"):
        lorafair.comparee  # noqa: B018
