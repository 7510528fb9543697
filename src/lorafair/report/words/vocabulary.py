"""The word tables by language, and the names everything else is built from (variants, metrics, deltas, tests)."""

from __future__ import annotations

import lorafair.report.words.en as _en
import lorafair.report.words.zh as _zh

LANGS = ("en", "zh")
TEXT = {"en": _en.WORDS, "zh": _zh.WORDS}
POSITIVE_METRICS = ("precision", "recall", "f1", "auc_roc")  # binary: computed for one named class


def table(lang: str, part: str) -> dict:
    """One part of the words of `lang` ("conclusions", "headings", "page", ...); English for an unknown language."""
    return TEXT.get(lang, TEXT["en"])[part]


def lang_of(report: dict, lang: str | None = None) -> str:
    """The requested language, else the run's, else English."""
    lang = lang or (report.get("config") or {}).get("lang") or "en"
    return lang if lang in LANGS else "en"


def ci_level(report: dict) -> str:
    alpha = (report.get("config") or {}).get("alpha", 0.05)
    ok = isinstance(alpha, (int, float)) and 0 < alpha < 1
    return f"{(1 - alpha) * 100:g}%" if ok else "95%"


def variant_names(lang: str) -> dict:
    """{variant id: standard display name} in `lang` (report["variants"][v]["name"])."""
    return dict(table(lang, "variants"))


def variant_name(vid: str, block: dict | None, lang: str) -> str:
    """The standard name of a variant in `lang`; a custom name recorded in the report is kept as is."""
    recorded = (block or {}).get("name")
    standard = {TEXT[code]["variants"].get(vid) for code in LANGS}
    if recorded and recorded not in standard:
        return str(recorded)
    return table(lang, "variants").get(vid, str(recorded or vid))


def delta_name(key: str, lang: str) -> str:
    name = table(lang, "deltas").get(key)
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
    label = table(lang, "metrics").get(metric, metric)
    if positive is not None and metric in POSITIVE_METRICS:
        return table(lang, "conclusions")["positive"].format(m=label, label=positive)
    return label


def test_name(test: str | None, lang: str) -> str:
    return table(lang, "tests").get(test, test) if test else "-"
