"""Every word of the report, English and Chinese, and the sentences worded from report.json's records.

report.json stores statements as records (a "kind" and its numbers and names, never a sentence): the
conclusion, the checks, the notes, the forward passes, the analysis notes. Every renderer (console,
Markdown, HTML) calls the functions here to word them in the language it is asked for, so one run
re-renders in either language with the same numbers, and `report["conclusion"]` / `report["checks"]`
(English, for scripts) are made from the same records by the same functions. Free of torch and numpy.

    en.py, zh.py      the word tables, one per language, with the same keys and placeholders
    vocabulary.py     table lookup, variant / metric / delta / test names, language and CI level
    numbers.py        percentage points, p-values, sizes, times: the one formatter of each
    conclusions.py    conclusion records: same_head, delta, underpowered, holm, across_seeds
    checks.py         check records: speed, fidelity, absent_labels, the task checks (seed_range: schema-1 only)
    notes.py          note records, forward passes, the head's features, data losses
    analysis.py       the analysis summary and its notes
    seeds.py          do the seeds agree: the seed_subspace and seed_churn records, the seed-agreement section
    beyond.py         what LoRA changed beyond the task (out-of-domain text): its lines, reasons and notes
    diagnosis.py      what to try next, from the evidence: report["diagnosis"] records and report["training"]
"""

from __future__ import annotations

from lorafair.report.words.analysis import analysis_lines, analysis_note_lines, analysis_note_sentence
from lorafair.report.words.beyond import beyond_note_lines, beyond_note_sentence, beyond_task_lines, reason_sentence
from lorafair.report.words.checks import check_lines, check_sentence, kind_of
from lorafair.report.words.conclusions import conclusion_lines, records_of, sentence, sweep_records
from lorafair.report.words.diagnosis import diagnosis_lines, diagnosis_sentence, training_line
from lorafair.report.words.notes import (
    data_loss_lines,
    features_sentence,
    head_lines,
    held_out_lines,
    held_out_what,
    note_lines,
    note_sentence,
    pass_sentence,
    pass_what,
)
from lorafair.report.words.numbers import (
    ci_text,
    finite,
    fmt_bytes,
    fmt_g,
    fmt_p,
    fmt_percent,
    fmt_pp,
    fmt_pp_ci,
    fmt_seconds,
    num,
    pct,
    signed,
)
from lorafair.report.words.seeds import agreement_lines, churn_sentence, fmt_phi
from lorafair.report.words.vocabulary import (
    LANGS,
    ci_level,
    delta_name,
    lang_of,
    metric_label,
    positive_label,
    table,
    test_name,
    variant_name,
    variant_names,
)

__all__ = [
    "LANGS",
    "agreement_lines",
    "analysis_lines",
    "analysis_note_lines",
    "analysis_note_sentence",
    "beyond_note_lines",
    "beyond_note_sentence",
    "beyond_task_lines",
    "check_lines",
    "check_sentence",
    "churn_sentence",
    "ci_level",
    "ci_text",
    "conclusion_lines",
    "data_loss_lines",
    "diagnosis_lines",
    "diagnosis_sentence",
    "delta_name",
    "features_sentence",
    "finite",
    "fmt_bytes",
    "fmt_g",
    "fmt_p",
    "fmt_percent",
    "fmt_phi",
    "fmt_pp",
    "fmt_pp_ci",
    "fmt_seconds",
    "head_lines",
    "held_out_lines",
    "held_out_what",
    "kind_of",
    "lang_of",
    "metric_label",
    "note_lines",
    "note_sentence",
    "num",
    "pass_sentence",
    "pass_what",
    "pct",
    "reason_sentence",
    "positive_label",
    "records_of",
    "sentence",
    "signed",
    "sweep_records",
    "table",
    "test_name",
    "training_line",
    "variant_name",
    "variant_names",
]
