"""HTML report: the answer first, what it shows, escaping, optional pieces, atomic write, headless Chromium.

Every page here is rendered from a real `build_report` output (synthetic labels and probabilities
through `report_build.build_report`, see synthetic_report.py), so the shape the renderer formats is the
one `lorafair compare` writes. Chromium: `apt-get install -y chromium` (skipped if absent).
"""

from __future__ import annotations

import base64
import copy
import html as html_mod
import io
import json
import re
import shutil
import subprocess
import warnings

import numpy as np
import pytest
from synthetic_report import add_issue8_keys, make_report

from lorafair.report import html as report_html
from lorafair.report.html import render_html, write_html

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMG_RE = re.compile(r'<img\b[^>]*\bsrc="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def png_payloads(page: str) -> list[bytes]:
    return [base64.b64decode(m, validate=True) for m in IMG_RE.findall(page)]


def assert_valid_png(data: bytes) -> None:
    assert data.startswith(PNG_SIGNATURE)
    import matplotlib.image as mpimg

    img = mpimg.imread(io.BytesIO(data), format="png")
    assert img.shape[0] > 50 and img.shape[1] > 50
    assert float(np.ptp(img)) > 0  # not a blank canvas


def text_of(fragment: str) -> str:
    return html_mod.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)))


def section(page: str, start: str, end: str) -> str:
    return page[page.index(start) : page.index(end, page.index(start))]


@pytest.fixture(scope="module")
def binary_report() -> dict:
    return make_report()


@pytest.fixture(scope="module")
def binary_page(binary_report) -> str:
    return render_html(binary_report)


def independent_verdict(entry: dict, alpha: float = 0.05) -> str:
    lo, hi = entry["ci"]
    significant = (lo > 0 or hi < 0) and (entry["p_value"] is None or entry["p_value"] < alpha)
    return ("better" if entry["value"] > 0 else "worse") if significant else "ns"


# -- the first screen ---------------------------------------------------------------------------------------
def test_answer_has_one_coloured_sentence_per_headline_delta(binary_report, binary_page):
    answer = section(binary_page, '<section class="answer">', "</section>")
    items = re.findall(r'<li class="(better|worse|ns)"><span class="sym">.</span>([^<]*)</li>', answer)
    expected = [(key, m) for key in ("B-A", "B-A1", "A1-A") for m in ("accuracy", "f1", "auc_roc")]
    assert len(items) == len(expected) == 9
    for (css, sentence), (key, metric) in zip(items, expected):
        entry = binary_report["deltas"][key][metric]
        assert css == independent_verdict(entry), (key, metric)
        sentence = html_mod.unescape(sentence)
        lo, hi = entry["ci"]
        assert f"[{lo * 100:+.1f}, {hi * 100:+.1f}] pp" in sentence
        magnitude = f"{abs(entry['value']) * 100:.1f} pp" if css != "ns" else f"{entry['value'] * 100:+.1f} pp"
        assert magnitude in sentence
        if entry["p_value"] is not None:
            test = {"mcnemar": "McNemar", "delong": "DeLong"}[entry["test"]]
            p = "p < 0.0001" if entry["p_value"] < 1e-4 else f"p = {entry['p_value']:.3g}"
            assert f"{test} {p}" in sentence
    # The synthetic B is much better than A and A1, which are alike: the colours must say so.
    assert [c for c, _ in items] == ["better"] * 6 + ["ns"] * 3
    assert "positive: pos" in text_of(answer)  # F1 and AUC name their positive class
    forest = png_payloads(answer)
    assert len(forest) == 1
    assert_valid_png(forest[0])
    assert "A and B share one head (SHA-256 3f3f3f3f3f3f…)" in text_of(answer)


def test_sections_come_in_reading_order_and_setup_is_collapsed(binary_page):
    marks = [
        '<section class="answer">',
        '<section id="metrics">',
        '<section id="checks">',
        '<section id="gains">',
        '<section id="speed">',
        '<section id="plots">',
        '<details id="setup">',
        '<details id="config">',
    ]
    positions = [binary_page.index(m) for m in marks]
    assert positions == sorted(positions)
    setup = section(binary_page, '<details id="setup">', "</details>")
    for piece in ("token ids SHA-256", "Forward passes", "Environment", "head SHA-256 of A"):
        assert piece in setup
    assert "token ids SHA-256" not in binary_page[: binary_page.index('<details id="setup">')]


def test_no_index_lists_sizes_in_gb_and_times_in_s_min(binary_report, binary_page):
    indices = binary_report["data"]["indices"]
    assert len(indices) == 300
    text = text_of(binary_page)
    assert json.dumps(indices[:5])[:-1] not in binary_page and ", ".join(map(str, indices[:5])) not in text
    assert "2.48 GB" in text  # environment peak RSS, 2,480,000,000 bytes
    assert "2480000000" not in binary_page and "1350000000" not in binary_page
    assert "1.35 GB" in text  # per-variant peak memory in the speed table
    assert "2.2 min" in text  # 131 s total
    assert f"{binary_report['variants']['B']['speed']['seconds']:.2f} s" in text


def test_metrics_table_shows_report_values_and_cis(binary_report, binary_page):
    metrics = section(binary_page, '<section id="metrics">', "</section>")
    text = text_of(metrics)
    for block in binary_report["variants"].values():
        for m in ("accuracy", "f1", "auc_roc", "ece"):
            entry = block["metrics"][m]
            assert f"{entry['value']:.4f} [{entry['ci'][0]:.4f}, {entry['ci'][1]:.4f}]" in text
    for label in (
        "F1 (positive: pos)",
        "precision (positive: pos)",
        "recall (positive: pos)",
        "AUC-ROC (positive: pos)",
    ):
        assert label in text


def test_significant_delta_rows_are_marked_in_the_metrics_direction(binary_report, binary_page):
    gains = section(binary_page, '<section id="gains">', "</section>")
    rows = re.findall(r"<tr( class=(?:better|worse))?><td>([^<]*)</td>", gains)
    assert len(rows) == 3 * 8
    lower_is_better = {"log_loss", "brier", "ece"}
    for (mark, _), (key, metric) in zip(
        rows, [(k, m) for k in ("B-A", "B-A1", "A1-A") for m in binary_report["deltas"]["B-A"]]
    ):
        want = independent_verdict(binary_report["deltas"][key][metric])
        if metric in lower_is_better and want != "ns":
            want = {"better": "worse", "worse": "better"}[want]
        assert (mark.removeprefix(" class=") or "ns") == want, (key, metric)
    # B's log loss and Brier score fall significantly: better, not worse.
    assert re.search(r"<tr class=better><td>log loss</td>", gains) and "class=worse" not in gains


def test_plots_decode(binary_page):
    pngs = png_payloads(binary_page)
    assert len(pngs) == 4 == binary_page.count("<img")  # forest, ROC, reliability, confusion
    for data in pngs:
        assert_valid_png(data)


def test_page_is_self_contained(binary_page):
    refs = re.findall(r'\b(?:src|href|action|poster|srcset)\s*=\s*["\']?([^"\'\s>]*)', binary_page, re.IGNORECASE)
    assert refs and all(r.startswith("data:") for r in refs), refs
    assert not re.search(r"url\(|@import|<script|<link|<iframe", binary_page, re.IGNORECASE)
    assert "Content-Security-Policy" in binary_page


# -- keys from other steps, optional pieces ---------------------------------------------------------------
def test_data_loss_head_and_fidelity_keys_are_shown():
    report = add_issue8_keys(make_report(seed=4))
    report["data"]["positive_label"] = "other"  # as recorded, not derived from the label list
    text = text_of(render_html(report))
    assert "F1 (positive: other)" in text and "Positive class: other." in text
    assert "rows dropped 3" in text and "examples truncated 12 (4.0%)" in text
    answer = text_of(section(render_html(report), '<section class="answer">', "</section>"))
    assert "3 rows dropped while loading the data" in answer and "12 examples (4.0%) truncated" in answer
    assert "max |logit difference| 2.4e-06" in text and "prediction flips 0" in text
    assert "head modules score" in text and "last non-pad token" in text


def test_strings_are_escaped():
    report = make_report(variants=("B", "A"), with_speed=False, labels=["<neg>", "pos&"])
    report["variants"]["B"]["name"] = '<script>alert("x")</script>'
    report["notes"] = ["B < A & <b>bold</b>"]
    report["config"]["note"] = "<img src=https://evil.example/x.png>"
    page = render_html(report)
    assert "<script" not in page and "<b>bold" not in page and "evil.example/x.png>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;neg&gt;" in page and "pos&amp;" in page and "B &lt; A &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    for data in png_payloads(page):  # label text that is not plain ASCII must not break plotting
        assert_valid_png(data)


def test_multiclass_names_no_positive_class_and_draws_per_class_roc():
    report = make_report(k=3, n=240, seed=1)
    page = render_html(report)
    assert "positive" not in text_of(page).lower().replace("false positive", "")
    assert "DeLong" not in page and "class_2" in page
    assert len(png_payloads(page)) == 4


def test_minimal_report_without_a1_r_cis_or_speed():
    report = make_report(variants=("B", "A"), bootstrap=0, with_speed=False, seed=2)
    page = render_html(report)
    assert "Frozen base + linear probe" not in page and "B - A1" not in page and "A1 - A" not in page
    assert '<section id="speed">' not in page
    acc = report["variants"]["B"]["metrics"]["accuracy"]["value"]
    assert f"<td class=num>{acc:.4f}</td>" in page  # no "[lo, hi]" without a CI
    answer = section(page, '<section class="answer">', "</section>")
    assert answer.count('<li class="ns">') == 3  # without a CI nothing is called significant


def test_report_without_conclusion_records_shows_its_stored_sentences(binary_report):
    old = copy.deepcopy(binary_report)
    del old["conclusion_records"]
    old["conclusion"] = ["B-A: accuracy improved (an older report)"]
    assert "B-A: accuracy improved (an older report)" in render_html(old)


def test_head_mismatch_is_flagged(binary_report):
    report = copy.deepcopy(binary_report)
    report["variants"]["A"]["head_sha256"] = "00" * 32
    report["head"]["A_equals_B"] = False
    page = render_html(report)
    assert '<p class="proof bad">' in page and '<span class="bad">NO</span>' in page


def test_chinese_page_same_numbers(binary_report, binary_page):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. matplotlib's "Glyph ... missing from font"
        zh = render_html(binary_report, "zh")
    assert '<html lang="zh-CN">' in zh and "LoRA 带来了什么" in zh and "各模型指标" in zh
    assert "LoRA微调" in zh and "improved by" not in zh and "提升" in zh
    numbers = re.compile(r"[+-]?\d+\.\d+")
    en_answer = section(binary_page, '<section class="answer">', "<figure>")
    zh_answer = section(zh, '<section class="answer">', "<figure>")
    assert numbers.findall(text_of(en_answer)) == numbers.findall(text_of(zh_answer))


# -- writing ------------------------------------------------------------------------------------------------
def test_write_html_is_atomic(tmp_path, monkeypatch, binary_report):
    out = tmp_path / "report.html"
    write_html(binary_report, out)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    out.write_text("previous", encoding="utf-8")

    def boom(report, lang=None):
        raise RuntimeError("render failed")

    monkeypatch.setattr(report_html, "render_html", boom)
    with pytest.raises(RuntimeError):
        write_html(binary_report, out)
    assert out.read_text(encoding="utf-8") == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temp file left


def test_write_html_cleans_temp_on_write_error(tmp_path, monkeypatch, binary_report):
    def fail_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(report_html.os, "replace", fail_replace)
    with pytest.raises(OSError):
        write_html(binary_report, tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []


# -- headless Chromium ---------------------------------------------------------------------------------------
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
# Runs before the page's Content-Security-Policy meta (a meta policy only governs what follows it),
# so the page itself is checked under its own CSP: blocked loads show up as violations. It also
# measures where the answer ends, to check that it fits the first screen.
PROBE = """<script>
window.__errs = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__errs.push(t && t !== window ? 'load failed: ' + (t.src || t.href || t.tagName) : 'js: ' + e.message);
}, true);
document.addEventListener('securitypolicyviolation', function (e) {
  window.__errs.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI);
});
var ce = console.error;
console.error = function () { window.__errs.push('console: ' + [].join.call(arguments, ' ')); ce.apply(console, arguments); };
window.addEventListener('load', function () {
  var imgs = [].slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var answer = document.querySelector('section.answer');
  var forest = answer ? answer.querySelector('img') : null;
  document.body.setAttribute('data-probe', JSON.stringify({total: imgs.length, ok: ok, errors: window.__errs,
    viewport: [window.innerWidth, window.innerHeight], scroll_width: document.documentElement.scrollWidth,
    answer_bottom: answer ? answer.getBoundingClientRect().bottom : null,
    forest_bottom: forest ? forest.getBoundingClientRect().bottom : null}));
});
</script>"""
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)")


def run_chromium(tmp_path, page_file, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--mute-audio",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
        page_file.as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, cwd=tmp_path, check=False)


def probe(tmp_path, page: str, name: str, size: str) -> dict:
    f = tmp_path / name
    f.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    proc = run_chromium(tmp_path, f, "--dump-dom", "--virtual-time-budget=5000", f"--window-size={size}")
    m = re.search(r'data-probe="([^"]*)"', proc.stdout)
    assert m, f"probe did not run (rc={proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(html_mod.unescape(m.group(1)))


def screenshot(tmp_path, page_file, size: str) -> np.ndarray:
    import matplotlib.image as mpimg

    shot = tmp_path / f"{page_file.stem}-{size.replace(',', 'x')}.png"
    proc = run_chromium(tmp_path, page_file, f"--screenshot={shot}", f"--window-size={size}")
    assert shot.exists(), proc.stderr[-2000:]
    img = mpimg.imread(io.BytesIO(shot.read_bytes()), format="png")
    width, height = map(int, size.split(","))
    assert img.shape[:2] == (height, width)
    assert float(img[..., :3].std()) > 0.05  # not a blank page
    return img


@needs_chromium
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_first_screen_in_headless_chromium(tmp_path, binary_report, lang):
    page = render_html(add_issue8_keys(copy.deepcopy(binary_report)), lang)
    desktop = probe(tmp_path, page, "desktop.html", "1280,800")
    assert desktop["errors"] == [] and desktop["total"] == desktop["ok"] == 4
    # --dump-dom reports a shorter window than asked for; the layout depends only on the width.
    assert desktop["viewport"][0] == 1280
    assert desktop["forest_bottom"] <= 800 and desktop["answer_bottom"] <= 800  # the answer fits the first screen
    phone = probe(tmp_path, page, "phone.html", "390,844")
    assert phone["errors"] == [] and phone["total"] == phone["ok"] == 4
    # Headless windows are at least 500 px wide for --dump-dom (the screenshot below is 390 px): the
    # narrow layout (media query < 800 px) is the same; nothing may be wider than the window.
    assert phone["viewport"][0] <= 500 and phone["scroll_width"] <= phone["viewport"][0]
    page_file = tmp_path / f"report-{lang}.html"
    page_file.write_text(page, encoding="utf-8")
    screenshot(tmp_path, page_file, "1280,800")
    screenshot(tmp_path, page_file, "390,844")


@needs_chromium
def test_chromium_probe_can_fail(tmp_path, binary_page):
    bad = binary_page.replace(
        "</body>", '<img src="data:image/png;base64,AAAA"><img src="https://example.invalid/x.png"></body>'
    )
    result = probe(tmp_path, bad, "bad.html", "1280,800")
    assert result["total"] == 6 and result["ok"] == 4
    assert any("load failed" in e for e in result["errors"])
    assert any(e.startswith("csp:") for e in result["errors"]), result["errors"]
