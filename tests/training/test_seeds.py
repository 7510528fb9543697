"""`train --seeds`, the same data budget for A1, and the across-seed summary (two-level bootstrap)."""

from __future__ import annotations

import contextlib
import csv
import html
import io
import json
import re

import numpy as np
import pytest
from safetensors.torch import load_file
from sklearn.metrics import accuracy_score, f1_score

from lorafair.cli import main
from lorafair.report import words
from lorafair.stats import multi_adapter as sweep_stats

from conftest import toy_rows, write_csv


@pytest.fixture(scope="module")
def seed_runs(llama_setup, tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    train = write_csv(toy_rows(48, seed=21), root / "train.csv")
    out = root / "runs"
    code = main(
        [
            "train",
            "--base-model",
            str(llama_setup.base),
            "--data",
            str(train),
            "--seeds",
            "0,1,2",
            "--output",
            str(out),
            "--max-steps",
            "2",
            "--batch-size",
            "8",
            "--lora-r",
            "2",
            "--lora-alpha",
            "4",
            "--eval-fraction",
            "0.25",
            "--max-length",
            "32",
            "--learning-rate",
            "0.01",
            "--quiet",
        ]
    )
    assert code == 0
    return out, train


def test_train_seeds_gives_one_adapter_per_seed_on_the_same_data(seed_runs):
    out, _ = seed_runs
    runs = [json.loads((out / f"seed-{k}" / "lorafair_run.json").read_text()) for k in range(3)]
    assert [r["seed"] for r in runs] == [0, 1, 2]
    assert len({json.dumps(r["train_data"]["indices"]) for r in runs}) == 1  # same split, same rows
    assert len({r["train_data"]["indices_sha256"] for r in runs}) == 1
    assert len({json.dumps(r["eval_data"]["indices"]) for r in runs}) == 1
    rows = runs[0]["train_data"]["indices"]
    assert len(rows) == 36 and sorted(set(rows) | set(runs[0]["eval_data"]["indices"])) == list(range(48))
    weights = [load_file(str(out / f"seed-{k}" / "adapter_model.safetensors")) for k in range(3)]
    key = next(k for k in weights[0] if "lora_A" in k)
    assert not np.allclose(weights[0][key].numpy(), weights[1][key].numpy())  # only the seed differs, and it matters


@pytest.fixture(scope="module")
def seed_compare(seed_runs, tmp_path_factory):
    """`lorafair compare --adapter OUTDIR` over the seed runs, as a user runs it: (report folder, data, console)."""
    out, _ = seed_runs
    root = tmp_path_factory.mktemp("seed-compare")
    data = write_csv(toy_rows(40, seed=22), root / "test.csv")
    report_dir = root / "report"
    argv = ["compare", "--adapter", str(out), "--data", str(data), "--bootstrap", "400", "--output", str(report_dir)]
    console = io.StringIO()
    with contextlib.redirect_stdout(console):  # the fixture is module-scoped: no capsys
        code = main(argv)
    assert code == 0
    return report_dir, data, console.getvalue()


def test_across_seeds_mean_equals_mean_of_per_seed_deltas(seed_compare):
    report_dir, _, _ = seed_compare
    top = json.loads((report_dir / "report.json").read_text())
    assert [a["name"] for a in top["adapters"]] == ["seed-0", "seed-1", "seed-2"]
    assert [a["config"]["seed"] for a in top["adapters"]] == [0, 1, 2]
    for key in ("B-A", "B-A1", "A1-A"):
        own = [
            json.loads((report_dir / "adapters" / f"seed-{k}" / "report.json").read_text())["deltas"][key]
            for k in range(3)
        ]
        for metric in ("accuracy", "f1", "log_loss"):
            summary = top["across_seeds"][key][metric]
            per_seed = [d[metric]["value"] for d in own]
            assert summary["n_seeds"] == 3
            assert summary["per_seed"] == pytest.approx(per_seed, abs=1e-12)
            assert summary["mean"] == pytest.approx(np.mean(per_seed), abs=1e-12)
            assert summary["sd"] == pytest.approx(np.std(per_seed, ddof=1), abs=1e-12)
            assert summary["ci"][0] <= summary["mean"] <= summary["ci"][1]
    assert any("Across 3 seeds" in line for line in top["conclusion"])


def test_probe_trained_on_the_adapters_training_examples(seed_compare, seed_runs):
    report_dir, _, _ = seed_compare
    own = json.loads((report_dir / "adapters" / "seed-0" / "report.json").read_text())
    (probe,) = [n for n in own["notes"] if n["kind"] == "probe_training_rows"]
    assert probe["examples"] == probe["trained"] == 36
    assert "probe trained on the adapter's 36 training examples" in words.note_sentence(probe, "en")
    probe_pass = [p for p in own["forward_passes"] if p["kind"] == "frozen_probe"]
    assert [p["examples"] for p in probe_pass] == [36]


# -- the sweep's statements in every medium and language ------------------------------------------------------
SEED_LINE = {
    "en": re.compile(
        r"Across (\d+) seeds, (B-A1|B-A|A1-A) (accuracy|F1|AUC-ROC): mean ([+-]\d+\.\d\d) pp \(sd (\d+\.\d\d) pp, "
        r"95% CI \[([+-]\d+\.\d\d) pp, ([+-]\d+\.\d\d) pp\]\): (robust|not robust) across seeds"
    ),
    "zh": re.compile(
        r"(\d+) 个种子上，(B-A1|B-A|A1-A) (准确率|F1|AUC-ROC)：均值 ([+-]\d+\.\d\d) pp（标准差 (\d+\.\d\d) pp，"
        r"95% 置信区间 \[([+-]\d+\.\d\d) pp, ([+-]\d+\.\d\d) pp\]）：跨种子(稳健|不稳健)"
    ),
}
HOLM_LINE = {
    "en": re.compile(
        r"(B-A1|B-A|A1-A) accuracy: significant after Holm-Bonferroni across (\d+) adapters for (\d+) of them"
        r"(?: \(([^)]*)\))?\."
    ),
    "zh": re.compile(
        r"(B-A1|B-A|A1-A) 准确率：经 Holm-Bonferroni 校正（(\d+) 个适配器）后显著的有 (\d+) 个(?: \(([^)]*)\))?。"
    ),
}
METRIC_IDS = {"accuracy": "accuracy", "准确率": "accuracy", "F1": "f1", "AUC-ROC": "auc_roc"}
ROBUST = {"robust": True, "not robust": False, "稳健": True, "不稳健": False}


def _plain_text(text: str, fmt: str) -> str:
    """What a reader sees: HTML without its tags (entities decoded); console and Markdown as they are."""
    return html.unescape(re.sub(r"<[^>]+>", " ", text)) if fmt == "html" else text


def _seed_statements(text: str, lang: str) -> dict:
    found = {}
    for k, delta, metric, mean, sd, lo, hi, robust in SEED_LINE[lang].findall(text):
        key = (delta, METRIC_IDS[metric])
        assert key not in found, f"{key} stated twice"
        found[key] = (int(k), [float(mean), float(sd), float(lo), float(hi)], ROBUST[robust])
    return found


def _holm_statements(text: str, lang: str) -> dict:
    found = {}
    for delta, k, s, names in HOLM_LINE[lang].findall(text):
        assert delta not in found, f"{delta} stated twice"
        found[delta] = (int(k), int(s), [n for n in names.split(", ") if n])
    return found


def _expected_statements(top: dict) -> tuple[dict, dict]:
    """From report.json's numbers alone: every across-seed summary in pp, and who survives Holm at alpha."""
    seeds = {}
    for delta, per_metric in top["across_seeds"].items():
        for metric in ("accuracy", "f1", "auc_roc"):
            s = per_metric[metric]
            lo, hi = s["ci"]
            seeds[delta, metric] = (
                s["n_seeds"],
                [100 * s["mean"], 100 * s["sd"], 100 * lo, 100 * hi],
                lo > 0 or hi < 0,
            )
    holm, alpha = {}, top["config"]["alpha"]
    for delta in top["across_seeds"]:
        rows = [r for r in top["sweep"] if r["delta"] == delta and r["metric"] == "accuracy"]
        hits = [r["adapter"] for r in rows if r["p_holm"] < alpha]
        holm[delta] = (len(top["adapters"]), len(hits), hits)
    return seeds, holm


def _assert_states_the_sweep(text: str, lang: str, top: dict, where: str) -> None:
    seeds, holm = _expected_statements(top)
    found = _seed_statements(text, lang)
    assert set(found) == set(seeds), where
    for key, (k, numbers, robust) in seeds.items():
        assert found[key][0] == k == 3 and found[key][2] == robust, (where, key)
        assert found[key][1] == pytest.approx(numbers, abs=0.0051), (where, key)  # printed to 2 decimals
    assert _holm_statements(text, lang) == holm, where


def test_a_seed_sweep_states_its_across_seed_and_holm_results_everywhere(seed_compare, capsys):
    """`compare --adapter OUTDIR` over seed runs: console, report.md and report.html state the across-seed and
    Holm results with report.json's numbers; `lorafair report --lang zh` states them in Chinese, every format."""
    report_dir, _, console = seed_compare
    top = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert top["schema_version"] == 2
    _assert_states_the_sweep(console, "en", top, "console")
    for name, fmt in (("report.md", "md"), ("report.html", "html")):
        text = (report_dir / name).read_text(encoding="utf-8")
        _assert_states_the_sweep(_plain_text(text, fmt), "en", top, name)
    kinds = [r["kind"] for r in top["conclusion_records"]]
    assert kinds == ["holm"] * 3 + ["across_seeds"] * 9 + ["seed_churn", "seed_subspace"]
    _assert_states_the_sweep("\n".join(top["conclusion"]), "en", top, 'report["conclusion"]')
    capsys.readouterr()
    for fmt in ("console", "md", "html"):
        assert main(["report", str(report_dir), "--lang", "zh", "--format", fmt]) == 0
        text = _plain_text(capsys.readouterr().out, fmt)
        _assert_states_the_sweep(text, "zh", top, f"zh {fmt}")
        assert "Across 3 seeds" not in text and "Holm-Bonferroni across" not in text


def test_the_across_seed_table_holds_report_json_values(seed_compare):
    report_dir, _, _ = seed_compare
    top = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    md = (report_dir / "report.md").read_text(encoding="utf-8")
    block = md[md.index("## Across seeds") :]
    block = block[: block.find("\n## ", 1)]  # the across-seed section only
    lines = [line for line in block.splitlines() if line.startswith("|")]
    header, rows = lines[0], [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "Delta", "Metric", "Seeds", "Mean (pp)", "SD (pp)", "95% CI", "Per seed (pp)"
    ]  # fmt: skip
    expected = [(d, m) for d in ("B-A", "B-A1", "A1-A") for m in ("accuracy", "f1", "auc_roc")]
    labels = {"accuracy": "accuracy", "f1": "F1", "auc_roc": "AUC-ROC"}
    assert [(r[0], r[1]) for r in rows] == [(d, labels[m]) for d, m in expected]
    for row, (delta, metric) in zip(rows, expected):
        s = top["across_seeds"][delta][metric]
        assert int(row[2]) == s["n_seeds"] == 3
        assert [float(row[3]), float(row[4])] == pytest.approx([100 * s["mean"], 100 * s["sd"]], abs=0.0051)
        assert [float(x) for x in re.findall(r"[+-]\d+\.\d+", row[5])] == pytest.approx(
            [100 * c for c in s["ci"]], abs=0.0051
        )
        assert [float(x) for x in row[6].split()] == pytest.approx([100 * v for v in s["per_seed"]], abs=0.0051)


def _probs(correct: np.ndarray, y: np.ndarray, confidence: float = 0.8) -> np.ndarray:
    """Binary probabilities whose argmax is right exactly where `correct` is True."""
    pred = np.where(correct, y, 1 - y)
    probs = np.full((len(y), 2), 1 - confidence)
    probs[np.arange(len(y)), pred] = confidence
    return probs


def test_across_seeds_unit_mean_sd_and_two_level_ci():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    shared = {"A1": _probs(rng.random(200) < 0.7, y)}
    per_seed = [{"B": _probs(rng.random(200) < p, y), "A": _probs(rng.random(200) < 0.6, y)} for p in (0.8, 0.85, 0.75)]
    out = sweep_stats.across_seeds(y, per_seed, shared, (("B", "A"), ("B", "A1")), n_resamples=2000, seed=1, alpha=0.05)
    for key, (new, ref) in {"B-A": ("B", "A"), "B-A1": ("B", "A1")}.items():
        expected = []
        for run in per_seed:
            run = {**shared, **run}
            expected.append(accuracy_score(y, run[new].argmax(1)) - accuracy_score(y, run[ref].argmax(1)))
        s = out[key]["accuracy"]
        assert s["per_seed"] == pytest.approx(expected) and s["mean"] == pytest.approx(np.mean(expected))
        assert s["sd"] == pytest.approx(np.std(expected, ddof=1))
        f1 = [
            f1_score(y, {**shared, **r}[new].argmax(1)) - f1_score(y, {**shared, **r}[ref].argmax(1)) for r in per_seed
        ]
        assert out[key]["f1"]["mean"] == pytest.approx(np.mean(f1))
    # two levels: the CI is wider than the spread of examples alone when the seeds disagree
    lo, hi = out["B-A"]["accuracy"]["ci"]
    assert lo < out["B-A"]["accuracy"]["mean"] < hi and hi - lo > 0.05
    records = sweep_stats.across_seed_records(out)
    assert [(r["delta"], r["metric"]) for r in records] == [
        (d, m) for d in ("B-A", "B-A1") for m in ("accuracy", "f1", "auc_roc")
    ]
    robust = [r for r in records if r["verdict"] == "robust"]
    assert robust and all(r["ci"][0] > 0 or r["ci"][1] < 0 for r in robust)
    assert all(words.sentence(r, "en").endswith(": robust across seeds.") for r in robust)


def test_fewer_than_three_seeds_leave_the_variance_unknown():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 50)
    per_seed = [{"B": _probs(rng.random(50) < 0.9, y), "A": _probs(rng.random(50) < 0.5, y)} for _ in range(2)]
    out = sweep_stats.across_seeds(y, per_seed, {}, (("B", "A"),), n_resamples=200, seed=0, alpha=0.05)
    records = sweep_stats.across_seed_records(out)
    assert records and all(r["verdict"] == "variance_unknown" and r["n_seeds"] == 2 for r in records)
    lines = [words.sentence(r, "en") for r in records]
    assert all("seed variance is unknown" in line for line in lines)


def test_seed_set_needs_distinct_seeds_and_one_configuration():
    cfg = {"lora_r": 8, "seed": 0, "output": "a"}
    runs = [{"seed": k, "train_config": {**cfg, "seed": k, "output": f"seed-{k}"}} for k in range(3)]
    assert sweep_stats.seed_set(runs)
    assert not sweep_stats.seed_set(runs[:1])
    assert not sweep_stats.seed_set(runs + [{"seed": 3, "train_config": {**cfg, "lora_r": 16}}])
    assert not sweep_stats.seed_set([runs[0], runs[0]])
    assert not sweep_stats.seed_set(runs + [{"seed": None, "train_config": {}}])


# -- do the seeds agree: ΔW subspaces and B's prediction churn -------------------------------------------------
def _saved_updates(adapter_dir) -> dict:
    """{module: dense ΔW (out x in)} from the safetensors file and adapter_config.json alone (peft's alpha / r)."""
    from safetensors import safe_open

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    factors: dict = {}
    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "np") as handle:
        for key in handle.keys():
            match = re.fullmatch(r"base_model\.model\.(.+)\.(lora_[AB])\.weight", key)
            if match:
                factors.setdefault(match.group(1), {})[match.group(2)] = handle.get_tensor(key).astype(np.float64)
    scaling = config["lora_alpha"] / config["r"]
    return {m: scaling * f["lora_B"] @ f["lora_A"] for m, f in factors.items()}


def _phi_by_svd(first, second) -> dict:
    """Hu et al.'s φ of two dense updates at each depth and side, from numpy's full SVDs."""
    out = {}
    svds = [np.linalg.svd(d) for d in (first, second)]
    for side in ("left", "right"):
        bases = [u if side == "left" else vt.T for u, _, vt in svds]
        ranks = [int(np.sum(s > s[0] * max(first.shape) * np.finfo(float).eps)) for _, s, _ in svds]
        energy = [int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), 0.9 - 1e-12) + 1) for _, s, _ in svds]
        out[side] = {}
        for depth, (i, j) in {"top1": (1, 1), "energy": energy, "rank": ranks}.items():
            overlap = bases[0][:, :i].T @ bases[1][:, :j]
            out[side][depth] = float(np.sum(overlap**2) / min(i, j))
    return out


def test_seed_agreement_equals_dense_svds_of_the_saved_tensors(seed_compare, seed_runs):
    report_dir, _, _ = seed_compare
    out, _ = seed_runs
    block = json.loads((report_dir / "report.json").read_text())["seed_agreement"]
    assert block["adapters"] == ["seed-0", "seed-1", "seed-2"]
    updates = [_saved_updates(out / f"seed-{k}") for k in range(3)]
    assert sorted(m["module"] for m in block["modules"]) == sorted(updates[0]) and len(updates[0]) == 8  # 2 x q,k,v,o
    for module in block["modules"]:
        for pair in module["pairs"]:
            i, j = pair["seeds"]
            expected = _phi_by_svd(updates[i][module["module"]], updates[j][module["module"]])
            for side in ("left", "right"):
                assert pair[side] == pytest.approx(expected[side], abs=1e-8), (module["module"], side)
    every = [p["left"]["energy"] for m in block["modules"] for p in m["pairs"]]
    assert block["summary"]["left"]["energy"] == pytest.approx(np.mean(every), abs=1e-12)
    assert block["summary"]["modules"] == 8 and [e["layer"] for e in block["layers"]] == [0, 1]
    assert block["seconds"]["weights"] >= 0 and block["notes"] == []


def test_churn_counts_the_seeds_predictions_csv(seed_compare):
    report_dir, _, _ = seed_compare
    churn = json.loads((report_dir / "report.json").read_text())["seed_agreement"]["churn"]
    preds, labels = [], None
    for k in range(3):
        with open(report_dir / "adapters" / f"seed-{k}" / "predictions.csv", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        preds.append([r["pred_B"] for r in rows])
        labels = [r["label"] for r in rows]
    n = len(labels)
    differ = sum(len({p[e] for p in preds}) > 1 for e in range(n))
    right = [[p[e] == labels[e] for e in range(n)] for p in preds]
    right_differs = sum(len({r[e] for r in right}) > 1 for e in range(n))
    pairwise = [sum(preds[i][e] != preds[j][e] for e in range(n)) / n for i, j in ((0, 1), (0, 2), (1, 2))]
    assert (churn["n"], churn["predictions"]["examples"], churn["correctness"]["examples"]) == (
        n,
        differ,
        right_differs,
    )
    assert churn["predictions"]["pairwise"] == pytest.approx(pairwise)
    assert churn["all_correct"] == sum(all(r[e] for r in right) for e in range(n))


def test_seed_agreement_is_stated_beside_the_across_seed_ci_in_every_medium(seed_compare, capsys):
    report_dir, _, console = seed_compare
    top = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    churn = top["seed_agreement"]["churn"]
    share = f"{100 * churn['predictions']['share']:.1f}%"
    statement = {
        "en": f"Across 3 seeds, B's predictions differ on {share} of the {churn['n']} evaluation examples",
        "zh": f"3 个种子上，B 的预测在 {churn['n']} 个评估样本中的 {share} 上不一致",
    }
    energy = f"{top['seed_agreement']['summary']['left']['energy']:.3f}"
    heading = {"en": "Seed agreement: LoRA updates and predictions", "zh": "种子一致性：LoRA 更新与预测"}
    last_row = " ".join(f"{100 * v:+.2f}" for v in top["across_seeds"]["A1-A"]["auc_roc"]["per_seed"])  # table's end
    texts = {("en", "console"): console}
    for name, fmt in (("report.md", "md"), ("report.html", "html")):
        texts["en", fmt] = _plain_text((report_dir / name).read_text(encoding="utf-8"), fmt)
    for fmt in ("console", "md", "html"):
        assert main(["report", str(report_dir), "--lang", "zh", "--format", fmt]) == 0
        texts["zh", fmt] = _plain_text(capsys.readouterr().out, fmt)
    for (lang, fmt), text in texts.items():
        assert text.count(statement[lang]) == 2, (lang, fmt)  # in the conclusion and below the across-seed table
        for found in re.finditer(re.escape(statement[lang]), text):  # each right after an across-seed CI
            before = text[: found.start()]
            ends = [m.end() for m in SEED_LINE[lang].finditer(before)] + [before.rfind(last_row) + len(last_row)]
            assert found.start() - max(ends) < 40, (lang, fmt)
        assert heading[lang] in text and energy in text, (lang, fmt)
    md = (report_dir / "report.md").read_text(encoding="utf-8")
    section = md[md.index("## Seed agreement") :]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("|")]
    for row, layer in zip(rows[2:], top["seed_agreement"]["layers"] + [top["seed_agreement"]["summary"]]):
        left, right = (float(v) for v in row[2].split(" / "))
        assert [left, right] == pytest.approx([layer["left"]["energy"], layer["right"]["energy"]], abs=5e-4)
