"""The words of the report in English and Chinese, and the sentences built from its structured records.

report.json stores conclusions and checks as records (numbers, test, verdict); every renderer calls
the functions here to turn them into sentences in the language it is asked for, so one run can be
re-rendered in either language with the same numbers. Free of torch and numpy.
"""

from __future__ import annotations

import math

from lorafair.core.names import METRIC_LABELS, VARIANT_NAMES
from lorafair.stats import multi_adapter

LANGS = ("en", "zh")
LOWER_IS_BETTER = ("log_loss", "brier", "ece")
TASK_CHECKS = ("unrecorded", "training_rows", "other_task", "labels", "absent")  # adapter_data.task_records kinds
POSITIVE_METRICS = ("precision", "recall", "f1", "auc_roc")  # binary: computed for one named class

DELTA_NAMES = {
    "en": {
        "B-A": "LoRA vs frozen base with the same head",
        "B-A1": "LoRA vs the best frozen head, a linear probe",
        "A1-A": "Linear probe vs LoRA head on frozen features",
    },
    "zh": {
        "B-A": "LoRA 对比同一分类头的冻结基础模型",
        "B-A1": "LoRA 对比最强冻结基线：线性探针",
        "A1-A": "冻结特征上线性探针对比 LoRA 分类头",
    },
}
TEST_NAMES = {
    "en": {"mcnemar": "McNemar", "delong": "DeLong", "bootstrap": "paired bootstrap"},
    "zh": {"mcnemar": "McNemar", "delong": "DeLong", "bootstrap": "配对 bootstrap"},
}
SENTENCES = {
    "en": {
        "same_head": "A and B use the same head: SHA-256 {h}.",
        "improved": "{m} improved by {v} ({level} CI [{lo}, {hi}] pp{p}).",
        "decreased": "{m} decreased by {v} ({level} CI [{lo}, {hi}] pp{p}).",
        "no_difference": "no significant difference in {m} ({v}, {level} CI [{lo}, {hi}] pp{p}).",
        "undefined": "{m} difference undefined ({why}).",
        "positive": "{m} (positive: {label})",
        "positive_class": "Positive class: {label}.",
        "seed_range": "B - A {m} gain {v} is outside the usual {lo}-{hi} pp: check the training parameters, "
        "LoRA rank/alpha, or train more epochs.",
        "speed": "QPS of B and A differ by {v}: after merging, both do the same FLOPs, so this is measurement "
        "noise or load.",
        "flips": "Merged B predicts differently from the unmerged LoRA model on {f} of {n} checked examples (max "
        "|logit difference| {d:.3g}, merged in {dtype}): B's timing is of a model that is not quite the "
        "trained one.",
        "absent_labels": "The evaluation sample holds no example of {labels} ({k} of the head's {n} labels): "
        "the scores say nothing about how well the model recognises {them}.",
    },
    "zh": {
        "same_head": "A 与 B 使用同一个分类头：SHA-256 {h}。",
        "improved": "{m}提升 {v}（{level} 置信区间 [{lo}, {hi}] pp{p}）。",
        "decreased": "{m}下降 {v}（{level} 置信区间 [{lo}, {hi}] pp{p}）。",
        "no_difference": "{m}无显著差异（{v}，{level} 置信区间 [{lo}, {hi}] pp{p}）。",
        "undefined": "{m}差异无定义（{why}）。",
        "positive": "{m}（正类：{label}）",
        "positive_class": "正类：{label}。",
        "seed_range": "B - A 的{m}提升 {v} 不在常见范围 {lo}-{hi} pp：请检查训练参数、LoRA rank/alpha，或增加训练轮数。",
        "speed": "B 与 A 的 QPS 相差 {v}：合并后两者计算量相同，差异来自测量噪声或负载。",
        "flips": "合并后的 B 与未合并的 LoRA 模型在 {f}/{n} 条检查样本上预测不同（最大 logit 差 {d:.3g}，合并精度 "
        "{dtype}）：B 的计时对象与训练得到的模型并不完全一致。",
        "absent_labels": "评估样本中没有标签 {labels} 的样本（分类头共 {n} 个标签，缺 {k} 个）：分数无法说明模型识别这些标签的能力。",
    },
}


def lang_of(report: dict, lang: str | None = None) -> str:
    """The requested language, else the run's, else English."""
    lang = lang or (report.get("config") or {}).get("lang") or "en"
    return lang if lang in LANGS else "en"


# -- numbers -----------------------------------------------------------------------------------------------
def fmt_pp(value: float | None, signed: bool = True, unit: bool = True, digits: int = 2) -> str:
    """A difference of fractions in percentage points ("+19.33 pp")."""
    if value is None:
        return "n/a"
    text = f"{value * 100:+.{digits}f}" if signed else f"{value * 100:.{digits}f}"
    return f"{text} pp" if unit else text


def fmt_p(p: float | None) -> str:
    if p is None or not isinstance(p, (int, float)) or not math.isfinite(p):
        return "n/a"
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.3g}"


def fmt_bytes(n: float | None) -> str:
    """Sizes as a person reads them: MB below a gigabyte, GB above (decimal units)."""
    if n is None:
        return "n/a"
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "n/a"
    return f"{s / 60:.1f} min" if s >= 60 else f"{s:.2f} s" if s < 10 else f"{s:.1f} s"


def ci_level(report: dict) -> str:
    alpha = (report.get("config") or {}).get("alpha", 0.05)
    ok = isinstance(alpha, (int, float)) and 0 < alpha < 1
    return f"{(1 - alpha) * 100:g}%" if ok else "95%"


# -- names -------------------------------------------------------------------------------------------------
def variant_name(vid: str, block: dict | None, lang: str) -> str:
    """The standard name of a variant in `lang`; a custom name recorded in the report is kept as is."""
    recorded = (block or {}).get("name")
    standard = {names.get(vid) for names in VARIANT_NAMES.values()}
    if recorded and recorded not in standard:
        return str(recorded)
    return VARIANT_NAMES[lang].get(vid, str(recorded or vid))


def delta_name(key: str, lang: str) -> str:
    name = DELTA_NAMES[lang].get(key)
    return f"{name} ({key.replace('-', ' - ')})" if name else key


def positive_label(report: dict) -> str | None:
    """Binary runs: the class that precision/recall/F1/AUC are computed for, as recorded (or by its id)."""
    data = report.get("data") or {}
    if data.get("positive_label") is not None:
        return str(data["positive_label"])
    labels, pos = data.get("labels") or [], (report.get("config") or {}).get("pos_label", 1)
    if len(labels) == 2 and isinstance(pos, int) and 0 <= pos < 2:
        return str(labels[pos])
    return None


def metric_label(metric: str, lang: str, positive: str | None = None) -> str:
    label = METRIC_LABELS[lang].get(metric, metric)
    if positive is not None and metric in POSITIVE_METRICS:
        return SENTENCES[lang]["positive"].format(m=label, label=positive)
    return label


def test_name(test: str | None, lang: str) -> str:
    return TEST_NAMES[lang].get(test, test) if test else "-"


# -- sentences ---------------------------------------------------------------------------------------------
def conclusion_sentence(
    record: dict, lang: str, *, positive: str | None = None, level: str = "95%", with_delta: bool = True
) -> str:
    """One conclusion record (delta, metric, value, ci, p_value, test, verdict) as a sentence in `lang`."""
    text = SENTENCES[lang]
    metric = metric_label(record["metric"], lang, positive)
    if record["verdict"] == "undefined":
        body = text["undefined"].format(m=metric, why=record.get("reason") or "undefined")
    else:
        ci = record.get("ci") or [None, None]
        p = (
            ""
            if record.get("p_value") is None
            else f", {test_name(record.get('test'), lang)} {fmt_p(record['p_value'])}"
        )
        significant = record["verdict"] in ("improved", "decreased")
        value = (
            fmt_pp(abs(record["value"]), signed=False, digits=1) if significant else fmt_pp(record["value"], digits=1)
        )
        lo, hi = (fmt_pp(c, unit=False, digits=1) for c in ci)
        body = text[record["verdict"]].format(m=metric, v=value, lo=lo, hi=hi, p=p, level=level)
    if lang == "en" and not with_delta:
        body = body[0].upper() + body[1:]
    if not with_delta:
        return body
    separator = "：" if lang == "zh" else ": "
    return f"{delta_name(record['delta'], lang)}{separator}{body}"


def conclusion_lines(report: dict, lang: str | None = None) -> list[str]:
    """The conclusion as sentences: the same-head proof, then one sentence per conclusion record."""
    lang = lang_of(report, lang)
    records = report.get("conclusion_records")
    if records is None:  # a report written before conclusions were stored as records
        return [str(line) for line in report.get("conclusion") or []]
    lines = []
    head = report.get("head") or {}
    if head.get("A_equals_B"):
        sha = ((report.get("variants") or {}).get("A") or {}).get("head_sha256")
        lines.append(SENTENCES[lang]["same_head"].format(h=sha))
    positive, level = positive_label(report), ci_level(report)
    lines += [conclusion_sentence(r, lang, positive=positive, level=level) for r in records]
    from lorafair.stats import power

    lines += power.underpowered_lines(report.get("power") or [], lang)
    return lines


def check_sentence(record: dict, lang: str) -> str:
    """A check record as a sentence; kinds this module does not know keep their recorded English text."""
    text = SENTENCES[lang]
    if record.get("check") == "seed_range":
        lo, hi = record["range"]
        return text["seed_range"].format(
            m=metric_label(record["metric"], lang),
            v=fmt_pp(record["value"]),
            lo=f"{lo * 100:.0f}",
            hi=f"{hi * 100:.0f}",
        )
    if record.get("check") == "speed":
        return text["speed"].format(v=f"{record['value'] * 100:+.1f}%")
    if record.get("check") == "absent_labels":
        labels = [str(label) for label in record["labels"]]
        them = "it" if len(labels) == 1 else "them"
        return text["absent_labels"].format(labels=", ".join(labels), k=len(labels), n=record["n_labels"], them=them)
    if record.get("check") in TASK_CHECKS:  # evaluation data vs the adapter's recorded task
        from lorafair.data.adapter_data import render_task_record

        return render_task_record(record, lang)
    if record.get("check") == "fidelity":
        return text["flips"].format(
            f=record["flips"],
            n=record["checked"],
            dtype=record.get("merge_dtype"),
            d=record.get("max_abs_logit_diff") or 0.0,
        )
    return str(record.get("text", record))


def check_lines(report: dict, lang: str | None = None) -> list[str]:
    """Checks from their records, plus any plain-text check added to report["checks"] by other steps."""
    lang = lang_of(report, lang)
    records = report.get("check_records")
    stored = [str(c) for c in report.get("checks") or []]
    if records is None:
        return stored
    english = {check_sentence(r, "en") for r in records}
    return [check_sentence(r, lang) for r in records] + [c for c in stored if c not in english]


# -- sweeps: Holm across adapters, the across-seed summary ------------------------------------------------
SWEEP_TEXT = {
    "en": {
        "robust": "Across {k} seeds, {d} {m}: mean {v} (sd {sd}, 95% CI [{lo}, {hi}]): robust across seeds.",
        "not": "Across {k} seeds, {d} {m}: mean {v} (sd {sd}, 95% CI [{lo}, {hi}]): not robust across seeds "
        "(the CI includes 0).",
        "few": "Across {k} seeds, {d} {m}: mean {v}; with fewer than 3 seeds the seed variance is unknown.",
        "holm": "{d} {m}: significant after Holm-Bonferroni across {k} adapters for {s} of them{names}.",
        "no_seed_set": "No across-seed summary: the adapters are not seed runs of one training configuration.",
    },
    "zh": {
        "robust": "{k} 个种子上，{d} {m}：均值 {v}（标准差 {sd}，95% 置信区间 [{lo}, {hi}]）：跨种子稳健。",
        "not": "{k} 个种子上，{d} {m}：均值 {v}（标准差 {sd}，95% 置信区间 [{lo}, {hi}]）：跨种子不稳健（置信区间包含 0）。",
        "few": "{k} 个种子上，{d} {m}：均值 {v}；种子少于 3 个，种子间方差未知。",
        "holm": "{d} {m}：经 Holm-Bonferroni 校正（{k} 个适配器）后显著的有 {s} 个{names}。",
        "no_seed_set": "无跨种子汇总：这些适配器不是同一训练配置的不同种子。",
    },
}


def _label(metric: str, lang: str) -> str:
    return METRIC_LABELS[lang].get(metric, metric)


def _sweep_pp(value) -> str:
    return "n/a" if value is None else f"{value * 100:+.2f} pp"


def across_seed_lines(across: dict, lang: str, metrics=("accuracy", "f1", "auc_roc")) -> list[str]:
    """The conclusion on seeds: robust only when the two-level CI excludes 0; < 3 seeds: variance unknown."""
    text, lines = SWEEP_TEXT[lang], []
    for key, per_metric in across.items():
        for metric in metrics:
            s = per_metric.get(metric)
            if not s or s["mean"] is None:
                continue
            if s["n_seeds"] < multi_adapter.MIN_SEEDS_FOR_VARIANCE or not s["ci"] or s["ci"][0] is None:
                lines.append(text["few"].format(k=s["n_seeds"], d=key, m=_label(metric, lang), v=_sweep_pp(s["mean"])))
                continue
            robust = s["ci"][0] > 0 or s["ci"][1] < 0
            lines.append(
                text["robust" if robust else "not"].format(
                    k=s["n_seeds"],
                    d=key,
                    m=_label(metric, lang),
                    v=_sweep_pp(s["mean"]),
                    sd=f"{s['sd'] * 100:.2f} pp",
                    lo=_sweep_pp(s["ci"][0]),
                    hi=_sweep_pp(s["ci"][1]),
                )
            )
    return lines


def holm_lines(records: list[dict], n_adapters: int, lang: str, alpha: float, metrics=("accuracy",)) -> list[str]:
    """One sentence per delta: how many adapters stay significant after the Holm adjustment."""
    text, lines = SWEEP_TEXT[lang], []
    keys = list(dict.fromkeys(r["delta"] for r in records))
    for key in keys:
        for metric in metrics:
            rows = [r for r in records if r["delta"] == key and r["metric"] == metric and r["p_holm"] is not None]
            if not rows:
                continue
            hits = [r["adapter"] for r in rows if r["p_holm"] < alpha]
            lines.append(
                text["holm"].format(
                    d=key,
                    m=_label(metric, lang),
                    k=n_adapters,
                    s=len(hits),
                    names=f" ({', '.join(hits)})" if hits else "",
                )
            )
    return lines
