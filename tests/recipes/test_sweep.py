"""Several adapters of one base in one run, checked against independent per-adapter references.

Tiny random Llama classifiers from conftest: three adapters (random LoRA, zero LoRA, another random LoRA).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html as html_mod
import io
import json
import re
import shutil

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch
from safetensors import safe_open

from lorafair.cli import main
from lorafair.config import CompareConfig
from lorafair.evaluation import sweep_passes as sweep
from lorafair.models import distributed
from lorafair.recipes import sweep as sweep_recipe

from conftest import make_adapter, toy_rows, write_csv


@pytest.fixture(scope="module")
def three_adapters(llama_setup):
    third = make_adapter(llama_setup.base, llama_setup.adapter.parent / "llama-adapter-3", "llama", seed=7)
    return [llama_setup.adapter, llama_setup.zero_adapter, third]


def _state_sha(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def swept(llama_setup, three_adapters, tmp_path_factory):
    """run_sweep with every forward pass counted and the base hashed around every LoRA pass."""
    passes, hashes = [], []
    mp = pytest.MonkeyPatch()
    real_run_pass, real_lora_pass = distributed.Context.run_pass, sweep.lora_pass

    def counting_run_pass(self, model, encoded, batches, **kwargs):
        passes.append(kwargs.get("desc"))
        return real_run_pass(self, model, encoded, batches, **kwargs)

    def hashing_lora_pass(run, session, snapshot):
        hashes.append(_state_sha(session.model))
        result = real_lora_pass(run, session, snapshot)
        hashes.append(_state_sha(session.model))
        return result

    mp.setattr(distributed.Context, "run_pass", counting_run_pass)
    mp.setattr(sweep, "lora_pass", hashing_lora_pass)
    out = tmp_path_factory.mktemp("sweep") / "out"
    probe = write_csv(toy_rows(40, seed=11), out.parent / "probe.csv")
    cfg = CompareConfig(
        adapter=[str(p) for p in three_adapters],
        data=str(llama_setup.data),
        num_samples=0,
        probe_data=str(probe),
        bootstrap=300,
        output=str(out),
        quiet=True,
        no_cache=True,  # the passes are counted: none may come from another fixture's cache entries
    )
    try:
        result = sweep_recipe.run_sweep(cfg, sweep.expand_adapters(cfg.adapter_list()))
    finally:
        mp.undo()
    sweep_recipe.write_sweep_outputs(result, out, overwrite=False)
    return result, passes, hashes, out


def test_one_frozen_pass_and_one_lora_pass_per_adapter(swept):
    result, passes, _, _ = swept
    assert passes.count("frozen base (A)") == 1
    assert passes.count("frozen base (probe data)") == 1
    assert passes.count("LoRA merged (B)") == 3 and len(passes) == 5
    evaluation = [p for p in result.report["forward_passes"] if p["kind"] != "lora_unmerged"]
    assert [p["kind"] for p in evaluation] == ["frozen_eval", "frozen_probe", "lora_eval", "lora_eval", "lora_eval"]
    assert [p["examples"] for p in evaluation] == [48, 40, 48, 48, 48]
    names = [entry["name"] for entry in result.report["adapters"]]
    assert [p.get("adapter") for p in evaluation] == [None, None, *names]
    fidelity_checks = [p for p in result.report["forward_passes"] if p["kind"] == "lora_unmerged"]
    assert [p["adapter"] for p in fidelity_checks] == names  # each adapter's merge is checked against its PeftModel


def test_base_is_restored_bit_identically_between_adapters(swept):
    _, _, hashes, _ = swept
    assert len(hashes) == 6 and len(set(hashes)) == 1


def _eval_texts(setup, report) -> list[str]:
    with open(setup.data, encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    return [texts[i] for i in report["data"]["indices"]]


def _saved_head(adapter_dir) -> dict:
    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "pt") as handle:
        return {k.rsplit(".", 1)[1]: handle.get_tensor(k) for k in handle.keys() if "lora_" not in k}  # noqa: SIM118 - safe_open is no dict


def test_each_adapters_a_and_b_equal_independent_references(swept, llama_setup, three_adapters):
    from peft import PeftModel
    from transformers import (
        AutoModel,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    result = swept[0]
    tokenizer = AutoTokenizer.from_pretrained(str(llama_setup.base))
    ids = [tokenizer(t)["input_ids"] for t in _eval_texts(llama_setup, result.report)]
    backbone = AutoModel.from_pretrained(str(llama_setup.base)).eval()
    with torch.no_grad():  # one example at a time: no padding anywhere
        features = torch.stack([backbone(input_ids=torch.tensor([x])).last_hidden_state[0, -1] for x in ids])
    for adapter_dir, logits in zip(three_adapters, result.logits):
        head = _saved_head(adapter_dir)
        expected_a = features @ head["weight"].T + head.get("bias", 0)
        torch.testing.assert_close(torch.from_numpy(logits["A"]), expected_a, atol=1e-5, rtol=1e-4)
        base = AutoModelForSequenceClassification.from_pretrained(str(llama_setup.base), num_labels=2)
        base.config.pad_token_id = tokenizer.pad_token_id
        reference = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
        with torch.no_grad():
            expected_b = torch.cat([reference(input_ids=torch.tensor([x])).logits for x in ids])
        torch.testing.assert_close(torch.from_numpy(logits["B"]), expected_b, atol=1e-4, rtol=1e-4)
    assert not np.allclose(result.logits[0]["B"], result.logits[0]["A"], atol=1e-3)  # LoRA matters here


def test_zero_adapters_b_minus_a_is_zero(swept):
    entry = swept[0].report["adapters"][1]
    assert entry["name"] == "llama-zero-adapter" and entry["config"]["r"] == 4
    deltas = entry["deltas"]["B-A"]
    assert deltas["accuracy"]["value"] == 0.0 and deltas["accuracy"]["discordant"] == [0, 0]
    for metric, d in deltas.items():
        if d["value"] is not None:
            assert d["value"] == pytest.approx(0.0, abs=1e-6), metric
    a, b = (entry["variants"][v]["head_sha256"] for v in ("A", "B"))
    assert a == b == entry["head_sha256"]


def _holm_by_hand(p_values):
    """Holm-Bonferroni: reject in order of p while p_(i) <= alpha / (m - i + 1); adjusted p per hypothesis."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    for position, i in enumerate(order):
        candidates = [min(1.0, (m - k) * p_values[order[k]]) for k in range(position + 1)]
        adjusted[i] = max(candidates)
    return adjusted


def test_p_holm_equals_a_holm_computation(swept):
    report = swept[0].report
    names = [a["name"] for a in report["adapters"]]
    checked = 0
    for delta in ("B-A", "B-A1", "A1-A"):
        for metric in ("accuracy", "auc_roc"):
            rows = [r for r in report["sweep"] if r["delta"] == delta and r["metric"] == metric]
            assert [r["adapter"] for r in rows] == names
            raw = [a["deltas"][delta][metric]["p_value"] for a in report["adapters"]]
            assert [r["p_value"] for r in rows] == raw
            assert [r["p_holm"] for r in rows] == pytest.approx(_holm_by_hand(raw), abs=1e-12)
            checked += 1
    assert checked == 6
    f1 = [r for r in report["sweep"] if r["metric"] == "f1"]
    assert f1 and all(r["p_holm"] is None and r["ci"] for r in f1)  # bootstrap-only metric: CI, no test


def test_outputs_per_adapter_and_top_level_sweep_table(swept):
    result, _, _, out = swept
    for entry in result.report["adapters"]:
        folder = out / "adapters" / entry["name"]
        own = json.loads((folder / "report.json").read_text())
        assert own["variants"]["B"]["metrics"] == entry["variants"]["B"]["metrics"]
        assert set(own["variants"]) == {"B", "A", "A1", "R"}
        assert (folder / "predictions.csv").is_file() and "| accuracy |" in (folder / "report.md").read_text()
        assert "mde" in own["deltas"]["B-A"]["accuracy"]
    top = json.loads((out / "report.json").read_text())
    assert set(top["variants"]) == {"A1", "R"} and len(top["adapters"]) == 3
    md = (out / "report.md").read_text()
    _assert_sweep_table(_markdown_table(md, "## Sweep: every adapter"), top)
    page = (out / "report.html").read_text()
    _assert_sweep_table(_html_table(page, "<h2>Sweep: every adapter</h2>"), top)
    (png,) = re.findall(r'base64,([A-Za-z0-9+/=]+)" alt="Accuracy deltas against the adapters', page)
    image = mpimg.imread(io.BytesIO(base64.b64decode(png, validate=True)), format="png")
    assert image.shape[0] > 100 and float(image[..., :3].std()) > 0.02  # the delta plot is drawn
    assert "across_seeds" not in top  # these adapters are not seed runs
    assert {"kind": "no_seed_set"} in top["notes"] and "not seed runs of one training configuration" in md
    assert [r["kind"] for r in top["conclusion_records"]] == ["holm"] * 3  # accuracy, per delta


def _markdown_table(md: str, heading: str) -> list[list[str]]:
    """The first table under `heading`: rows of cells, the header first, the alignment row dropped."""
    lines = [line for line in md[md.index(heading) :].splitlines()[1:] if line.strip()]
    table = []
    for line in lines:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in line.strip().strip("|").split("|")])
    return [table[0], *table[2:]]


def _html_table(page: str, heading: str) -> list[list[str]]:
    block = page[page.index(heading) :]
    block = block[: block.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", block)
    return [[html_mod.unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)] for row in rows]


def _number_or_none(text: str):
    return None if text in ("-", "n/a") else float(text)


def _assert_sweep_table(table: list[list[str]], report: dict) -> None:
    """Every cell of the sweep table against report["adapters"] and report["sweep"], parsed independently."""
    deltas = ["B-A", "B-A1", "A1-A"]
    header = ["Adapter", "r", "steps", "seed", "B acc", "A acc"]
    assert table[0] == header + [c for d in deltas for c in (f"{d} acc (pp)", "95% CI", "p", "p_holm")]
    assert [row[0] for row in table[1:]] == [entry["name"] for entry in report["adapters"]]
    for row, entry in zip(table[1:], report["adapters"]):
        assert row[1:4] == [
            "-" if entry["config"].get(k) is None else str(entry["config"][k]) for k in ("r", "steps", "seed")
        ]
        accuracy = [entry["variants"][v]["metrics"]["accuracy"]["value"] for v in ("B", "A")]
        assert [float(row[4]), float(row[5])] == pytest.approx(accuracy, abs=5e-5)
        for i, delta in enumerate(deltas):
            value, ci, p, p_holm = row[6 + 4 * i : 10 + 4 * i]
            (record,) = [
                r
                for r in report["sweep"]
                if (r["adapter"], r["delta"], r["metric"]) == (entry["name"], delta, "accuracy")
            ]
            assert float(value) == pytest.approx(100 * record["value"], abs=0.0051)
            assert [float(x) for x in re.findall(r"[+-]\d+\.\d+", ci)] == pytest.approx(
                [100 * c for c in record["ci"]], abs=0.0051
            )
            for shown, stored in ((p, record["p_value"]), (p_holm, record["p_holm"])):
                assert _number_or_none(shown) == (None if stored is None else pytest.approx(stored, rel=5e-3))


def test_adapters_of_different_bases_are_refused(llama_setup, tmp_path, capsys):
    other_base = tmp_path / "other-base"
    shutil.copytree(llama_setup.base, other_base)
    other = make_adapter(other_base, tmp_path / "other-adapter", "llama", seed=3)
    code = main(
        [
            "compare",
            "--adapter",
            str(llama_setup.adapter),
            "--adapter",
            str(other),
            "--data",
            str(llama_setup.data),
            "--output",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "share one base model" in err and len(err.strip().splitlines()) == 1


def test_folder_of_checkpoints_expands_in_step_order(llama_setup, tmp_path):
    run = tmp_path / "run"
    for step in (10, 2, 100):
        shutil.copytree(llama_setup.adapter, run / "checkpoints" / f"checkpoint-{step}")
    (run / "notes").mkdir()
    found = sweep.expand_adapters([str(run)])
    assert [p.name for p in found] == ["checkpoint-2", "checkpoint-10", "checkpoint-100"]
    assert sweep.expand_adapters([str(llama_setup.adapter)]) == [llama_setup.adapter]  # an adapter is itself
    assert sweep.adapter_names([run / "a" / "x", run / "b" / "x", run / "y"]) == ["a-x", "b-x", "y"]


def test_restore_refuses_when_a_merge_moved_weights_outside_the_snapshot(llama_setup):
    from lorafair.models import modeling

    adapter = modeling.read_adapter(llama_setup.adapter)
    model = modeling.load_base_classifier(llama_setup.base, adapter.num_labels)
    before = _state_sha(model)
    complete = sweep.BaseSnapshot(model, [adapter])
    blind = sweep.BaseSnapshot(model, [])  # knows neither the LoRA modules nor the head
    model = modeling.merge_lora(model, adapter)
    with pytest.raises(RuntimeError, match="not restored"):
        blind.restore(model)
    complete.restore(model)
    assert _state_sha(model) == before
