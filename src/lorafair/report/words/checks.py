"""The checks: report["check_records"] worded, one sentence per record, in English or Chinese.

Record kinds: speed (QPS of A and B apart, like for like), fidelity (merged B predicts unlike the unmerged model),
dtype_flips (bf16 predicts unlike fp32: words/speed_dtype.py), absent_labels (labels with no evaluation example),
and the evaluation data against the adapter's recorded task (data/adapter_data.task_records): unrecorded,
training_rows, other_task, labels (and absent, from schema-1 reports). Schema 1 named the kind "check"; its
seed_range records (B - A outside the seed's usual 3-8 pp) are worded only to re-render those old reports: the
report now says what to try next from its own figures instead (report["diagnosis"], words/diagnosis.py).
"""

from __future__ import annotations

from lorafair.report.words.numbers import fmt_percent, fmt_pp
from lorafair.report.words.speed_dtype import dtype_flips_sentence
from lorafair.report.words.vocabulary import lang_of, metric_label, table

TASK_KINDS = ("unrecorded", "training_rows", "other_task", "labels", "absent")


def kind_of(record: dict) -> str | None:
    return record.get("kind") or record.get("check")


def check_sentence(record: dict, lang: str) -> str:
    """A check record as a sentence; a kind this version does not know keeps its recorded text."""
    text, kind = table(lang, "checks"), kind_of(record)
    if kind == "seed_range":  # schema-1 reports only
        lo, hi = record["range"]
        return text["seed_range"].format(
            m=metric_label(record["metric"], lang),
            v=fmt_pp(record["value"]),
            lo=f"{lo * 100:.0f}",
            hi=f"{hi * 100:.0f}",
        )
    if kind == "speed":
        return text["speed"].format(v=fmt_percent(record["value"], signed=True))
    if kind == "absent_labels":
        labels = [str(label) for label in record["labels"]]
        them = text["it" if len(labels) == 1 else "them"]
        return text["absent_labels"].format(labels=", ".join(labels), k=len(labels), n=record["n_labels"], them=them)
    if kind == "dtype_flips":
        return dtype_flips_sentence(record, lang)
    if kind == "fidelity":
        f, n, d = record["flips"], record["checked"], record.get("max_abs_logit_diff") or 0.0
        return text["fidelity"].format(f=f, n=n, dtype=record.get("merge_dtype"), d=d)
    if kind in TASK_KINDS:
        return task_sentence(record, lang)
    return str(record.get("text", record))


def task_sentence(record: dict, lang: str) -> str:
    """The evaluation data against the task the adapter recorded (data/adapter_data.task_records)."""
    text, kind = table(lang, "checks"), kind_of(record)
    fields = {k: v for k, v in record.items() if k not in ("kind", "check")}
    if kind == "other_task":
        fields["eval"] = text["recorded_eval"].format(spec=record["eval"]) if record.get("eval") else ""
    if kind == "absent" and isinstance(fields.get("labels"), list):
        fields["labels"] = ", ".join(map(str, fields["labels"]))
    return text[kind].format(**fields)


def check_lines(report: dict, lang: str | None = None) -> list[str]:
    """The checks as sentences. A schema-1 report also keeps plain-text checks that other steps added to
    report["checks"]; in schema 2 report["checks"] is only the English of the records."""
    lang = lang_of(report, lang)
    records = report.get("check_records")
    stored = [str(c) for c in report.get("checks") or []]
    if records is None:
        return stored
    lines = [check_sentence(r, lang) for r in records]
    if (report.get("schema_version") or 1) >= 2:
        return lines
    english = {check_sentence(r, "en") for r in records}
    return lines + [c for c in stored if c not in english]
