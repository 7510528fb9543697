"""The first screen of the HTML page: the answer, coloured by significance, beside the delta forest plot.

One sentence per headline delta (B - A, B - A1, A1 - A on accuracy, F1 and AUC) with its CI and p, then the
other conclusion records (a sweep's Holm and across-seed statements, underpowered deltas), then the proof
that A and B run one head. Every sentence is worded by report/words from report["conclusion_records"].
"""

from __future__ import annotations

from lorafair.core.names import DELTA_KEYS, HEADLINE_METRICS
from lorafair.report import plots, words
from lorafair.report.html_parts import Page, png_img
from lorafair.report.tables import esc, ordered
from lorafair.stats import verdicts

MARK_CLASS = {"improved": "better", "decreased": "worse", "no_difference": "ns", "undefined": "ns"}  # higher is better
MARK_SYMBOL = {"improved": "▲", "decreased": "▼", "no_difference": "●", "undefined": "○"}
STATEMENT_ORDER = ("holm", "across_seeds", "underpowered")  # the records below the delta verdicts, in groups
STATEMENT_GROUPS = {"across_seeds": ("across_seeds", "seed_subspace", "seed_churn")}  # do the seeds agree: beside it


def answer(page: Page) -> str:
    records = words.records_of(page.report)
    if records is None:  # a report from before records: its stored sentences
        lines = words.conclusion_lines(page.report, page.lang)
        body = '<ul class="verdicts">' + "".join(f'<li class="ns">{esc(line)}</li>' for line in lines) + "</ul>"
    else:
        body = delta_verdicts(page, records) + statements(page, records)
    caption = page.s["forest"].format(level=page.level)
    forest = png_img(
        plots.forest_png(forest_rows(page), page.level, scale=100.0, unit="pp"), caption, page.s["not_available"]
    )
    return (
        f'<section class="answer"><div><h2>{esc(page.s["answer"])}</h2><p class="lede">{esc(lede(page))}</p>'
        f"{body}{head_proof(page)}</div><figure>{forest}<figcaption>{esc(caption)}</figcaption></figure></section>"
    )


def lede(page: Page) -> str:
    """How many examples of what, the CI level, what the colours mean, the positive class, rows lost."""
    data, config = page.report.get("data") or {}, page.report.get("config") or {}
    text = page.s["lede"].format(
        n=data.get("n", "?"), source=data.get("source", "?"), level=page.level, alpha=config.get("alpha", 0.05)
    )
    if page.positive is not None:
        text += " " + words.table(page.lang, "conclusions")["positive_class"].format(label=page.positive)
    lost = words.data_loss_lines(page.report, page.lang)  # dropped or truncated rows, if any
    if lost:
        text += " " + "; ".join(lost) + page.s["sentence_end"]
    return text


def delta_verdicts(page: Page, records: list[dict]) -> str:
    groups: dict = {}
    for record in records:
        if record.get("kind", "delta") == "delta":
            groups.setdefault(record["delta"], []).append(record)
    return "".join(delta_group(page, key, groups[key]) for key in ordered(groups, DELTA_KEYS))


def delta_group(page: Page, key: str, records: list[dict]) -> str:
    items = []
    for r in records:
        sentence = words.sentence(r, page.lang, positive=page.positive, level=page.level, with_delta=False)
        verdict = r.get("verdict", "no_difference")
        items.append(
            f'<li class="{MARK_CLASS.get(verdict, "ns")}"><span class="sym">'
            f"{MARK_SYMBOL.get(verdict, '●')}</span>{esc(sentence)}</li>"
        )
    return f'<h3>{esc(words.delta_name(key, page.lang))}</h3><ul class="verdicts">{"".join(items)}</ul>'


def statements(page: Page, records: list[dict]) -> str:
    """The other conclusion records, one group per kind: Holm across adapters, across seeds, power."""
    parts = []
    for kind in STATEMENT_ORDER:
        chosen = [r for r in records if r.get("kind") in STATEMENT_GROUPS.get(kind, (kind,))]
        if chosen:
            items = "".join(
                f'<li class="{statement_class(r)}">{esc(words.sentence(r, page.lang))}</li>' for r in chosen
            )
            parts.append(f'<h3>{esc(page.s[kind])}</h3><ul class="verdicts">{items}</ul>')
    return "".join(parts)


def statement_class(record: dict) -> str:
    """Green / red for a delta robust across seeds, by its sign; grey for everything else."""
    if record.get("kind") == "across_seeds" and record.get("verdict") == "robust":
        return "better" if record["mean"] > 0 else "worse"
    return "ns"


def head_proof(page: Page) -> str:
    head_a = page.variants.get("A", {}).get("head_sha256")
    head_b = page.variants.get("B", {}).get("head_sha256")
    if not (head_a and head_b):
        return ""
    if head_a == head_b:
        return f'<p class="proof ok">✔ {esc(page.s["same_head"].format(h=str(head_a)[:12]))}</p>'
    return f'<p class="proof bad">✘ {esc(page.s["head_differs"])}</p>'


def forest_rows(page: Page) -> list:
    """(label, delta, ci, mark) for the headline metrics of every delta, in canonical order (ASCII labels)."""
    rows, alpha = [], (page.report.get("config") or {}).get("alpha", 0.05)
    deltas = page.report.get("deltas") or {}
    for key in ordered(deltas, DELTA_KEYS):
        for metric in HEADLINE_METRICS:
            entry = deltas[key].get(metric) or {}
            if entry.get("value") is not None:
                label = f"{key}  {words.metric_label(metric, 'en')}"
                rows.append((label, entry["value"], entry.get("ci"), verdicts.mark(entry, metric, alpha)))
    return rows
