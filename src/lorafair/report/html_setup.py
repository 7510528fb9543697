"""The end of the HTML page, collapsed: data, heads, fidelity, forward passes, notes, environment, config."""

from __future__ import annotations

from lorafair.report import words
from lorafair.report.html_parts import Page, html_list, kv_table, plain
from lorafair.report.tables import esc


def setup(page: Page) -> str:
    s, report = page.s, page.report
    blocks = [(s["data"], kv_table(data_rows(page))), (s["heads"], kv_table(head_rows(page)))]
    fidelity = fidelity_rows(page)
    if fidelity:
        blocks.append((s["fidelity"], kv_table(fidelity)))
    passes = report.get("forward_passes") or []
    if passes:
        blocks.append(
            (s["passes"], html_list([f"{words.pass_what(p, page.lang)}: {p.get('examples')}" for p in passes]))
        )
    notes = [words.note_sentence(n, page.lang) for n in report.get("notes") or []]  # data loss, head: in the tables
    if notes:
        blocks.append((s["notes"], html_list(notes)))
    env = report.get("environment") or {}
    if env:
        blocks.append((s["environment"], kv_table([(s.get(f"env_{k}", k), esc(plain(k, v))) for k, v in env.items()])))
    body = "".join(f"<div><h3>{esc(title)}</h3>{html}</div>" for title, html in blocks)
    return f'<details id="setup"><summary>{esc(s["setup"])}</summary><div class="grid">{body}</div></details>'


def data_rows(page: Page) -> list[tuple[str, str]]:
    s, data = page.s, page.report.get("data") or {}
    rows = [(s["source"], f"<code>{esc(data.get('source', '—'))}</code>"), (s["n"], esc(data.get("n", "—")))]
    held_out = words.held_out_what(page.report, page.lang)
    if held_out is not None:  # the source is a cache file: name the training file and its rows
        rows.append((s["held_out"], esc(held_out)))
    if data.get("n_available") is not None:
        rows.append((s["n_available"], esc(data["n_available"])))
    rows.append((s["labels"], esc(", ".join(map(str, page.labels)) or "—")))
    if page.positive is not None:
        rows.append((s["positive"], esc(page.positive)))
    if data.get("label_counts"):
        rows.append((s["label_counts"], esc(", ".join(f"{k}: {v}" for k, v in data["label_counts"].items()))))
    for key, label in (("dropped_rows", "dropped"), ("truncated", "truncated")):
        if data.get(key) is not None:
            share = f" ({words.fmt_percent(data.get('truncated_share', 0))})" if key == "truncated" else ""
            rows.append((s[label], esc(f"{data[key]}{share}")))
    if data.get("tokenize_seconds") is not None:
        rows.append((s["tokenize"], esc(words.fmt_seconds(data["tokenize_seconds"]))))
    rows.append((s["token_hash"], f"<code>{esc(data.get('token_ids_sha256', '—'))}</code>"))
    total = (page.report.get("timing") or {}).get("total_seconds")
    if total is not None:
        rows.append((s["total_time"], esc(words.fmt_seconds(total))))
    return rows


def head_rows(page: Page) -> list[tuple[str, str]]:
    s, head = page.s, page.report.get("head") or {}
    rows = []
    if head.get("module"):
        rows.append((s["module"], f"<code>{esc(head['module'])}</code>"))
    if head.get("modules"):
        rows.append((s["modules"], f"<code>{esc(', '.join(map(str, head['modules'])))}</code>"))
    if head.get("features"):
        rows.append((s["features"], esc(words.features_sentence(head["features"], page.lang))))
    if "A_equals_B" in head:
        same = bool(head["A_equals_B"])
        rows.append((s["equal"], f'<span class="{"ok" if same else "bad"}">{esc(s["yes" if same else "no"])}</span>'))
    rows += [
        (s["head_of"].format(v=v), f"<code>{esc(b.get('head_sha256') or '—')}</code>") for v, b in page.variants.items()
    ]
    return rows


def fidelity_rows(page: Page) -> list[tuple[str, str]]:
    s, fid = page.s, page.report.get("fidelity") or {}
    keys = (
        ("merged_vs_unmerged_max_abs_logit_diff", "fid_diff"),
        ("prediction_flips", "fid_flips"),
        ("checked_examples", "fid_n"),
        ("merge_dtype", "fid_dtype"),
    )
    return [(s[label], esc(plain(key, fid[key]))) for key, label in keys if fid.get(key) is not None]


def config(page: Page) -> str:
    settings = page.report.get("config") or {}
    if not settings:
        return ""
    rows = [(k, f"<code>{esc(plain(k, v))}</code>") for k, v in settings.items()]
    return f'<details id="config"><summary>{esc(page.s["config"])}</summary>{kv_table(rows)}</details>'
