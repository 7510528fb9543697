"""HTML report: structure, escaping, optional pieces, atomic write, and a headless-Chromium check.

The reports here come from `make_report`, a self-contained generator of realistic report.json
dicts (synthetic predictions → metrics, curves, confusion matrices), so these tests do not depend
on the rest of the package. Chromium: `apt-get install -y chromium` (skipped if absent).
"""

from __future__ import annotations

import base64
import copy
import io
import json
import re
import shutil
import subprocess
import warnings

import numpy as np
import pytest

from lorafair import report_html
from lorafair.report_html import render_html, write_html

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMG_RE = re.compile(r'<img\b[^>]*\bsrc="data:image/png;base64,([A-Za-z0-9+/=]+)"')
NAMES = {"B": "LoRA model", "A": "Frozen base + LoRA head", "A1": "Frozen base + linear probe",
         "R": "Base + random head"}
QUALITY = {"B": 2.6, "A": 1.6, "A1": 2.0, "R": 0.0}  # logit margin given to the true class


# -- fixture generator ----------------------------------------------------------------------------
def _roc(y: np.ndarray, score: np.ndarray) -> dict:
    order = np.argsort(-score, kind="mergesort")
    y, score = y[order], score[order]
    last = np.r_[np.diff(score) != 0, True]
    tp, fp = np.cumsum(y)[last], np.cumsum(1 - y)[last]
    fpr, tpr = np.r_[0.0, fp / fp[-1]], np.r_[0.0, tp / tp[-1]]
    return {"fpr": fpr.round(5).tolist(), "tpr": tpr.round(5).tolist(), "auc": float(np.trapezoid(tpr, fpr))}


def _reliability(y: np.ndarray, prob: np.ndarray) -> tuple[dict, float]:
    conf, pred = prob.max(1), prob.argmax(1)
    edges = np.linspace(0, 1, 16)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, 14)
    rel = {"bin_edges": edges.tolist(), "confidence": [], "accuracy": [], "count": []}
    ece = 0.0
    for b in range(15):
        m = idx == b
        rel["count"].append(int(m.sum()))
        if not m.any():
            rel["confidence"].append(None)
            rel["accuracy"].append(None)
            continue
        c, a = float(conf[m].mean()), float((pred[m] == y[m]).mean())
        rel["confidence"].append(c)
        rel["accuracy"].append(a)
        ece += m.mean() * abs(a - c)
    return rel, float(ece)


def _metric(value, with_ci: bool, width: float = 0.03) -> dict:
    if value is None:
        return {"value": None, "reason": "only one class present"}
    out = {"value": float(value)}
    if with_ci:
        lo, hi = float(value) - width, float(value) + width
        out["ci"] = [max(lo, 0.0), min(hi, 1.0)] if value <= 1 else [lo, hi]
    return out


def _variant(vid: str, y: np.ndarray, k: int, rng: np.random.Generator, with_ci: bool, with_speed: bool) -> dict:
    n = len(y)
    logits = rng.normal(size=(n, k)) + QUALITY[vid] * np.eye(k)[y]
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    pred = prob.argmax(1)
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (y, pred), 1)
    tp = np.diag(cm).astype(float)
    prec = np.divide(tp, cm.sum(0), out=np.zeros(k), where=cm.sum(0) > 0)
    rec = tp / cm.sum(1)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros(k), where=prec + rec > 0)
    if k == 2:
        roc = _roc(y, prob[:, 1])
        p_, r_, f_, auc = prec[1], rec[1], f1[1], roc["auc"]
    else:
        per = {str(c): _roc((y == c).astype(int), prob[:, c]) for c in range(k)}
        roc = {"per_class": per}
        p_, r_, f_ = prec.mean(), rec.mean(), f1.mean()
        auc = float(np.mean([c["auc"] for c in per.values()]))
    if vid == "R" and k == 2:  # exercise the "undefined metric" path
        roc, auc = None, None
    rel, ece = _reliability(y, prob)
    onehot = np.eye(k)[y]
    metrics = {"accuracy": (pred == y).mean(), "f1": f_, "precision": p_, "recall": r_, "auc_roc": auc,
               "log_loss": -np.log(prob[np.arange(n), y]).mean(), "brier": ((prob - onehot) ** 2).sum(1).mean(),
               "ece": ece}
    v = {"name": NAMES[vid], "metrics": {m: _metric(x, with_ci) for m, x in metrics.items()},
         "confusion_matrix": cm.tolist(), "curves": {"roc": roc, "reliability": rel}}
    if vid in ("A", "B"):
        v["head_sha256"] = "3f" * 32
    if with_speed and vid != "A1":
        v["speed"] = {"qps": 40.0 + rng.random(), "tokens_per_s": 2100.0 + 10 * rng.random(),
                      "latency_ms_p50": 12.0, "latency_ms_p95": 19.5}
    return v


def make_report(k: int = 2, variants=("B", "A", "A1", "R"), with_ci: bool = True, with_speed: bool = True,
                lang: str = "en", n: int = 400, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    y = rng.integers(k, size=n)
    vs = {vid: _variant(vid, y, k, rng, with_ci, with_speed) for vid in variants}
    deltas = {}
    for did in ("B-A", "B-A1", "A1-A"):
        new, ref = did.split("-")
        if new not in vs or ref not in vs:
            continue
        deltas[did] = {}
        for metric in vs[new]["metrics"]:
            a, b = vs[new]["metrics"][metric]["value"], vs[ref]["metrics"][metric]["value"]
            if a is None or b is None:
                deltas[did][metric] = {"value": None, "reason": "undefined for one variant"}
                continue
            test = {"accuracy": "mcnemar", "auc_roc": "delong" if k == 2 else "bootstrap"}.get(metric, "bootstrap")
            d = {"value": a - b, "relative": (a - b) / b if b else None,
                 "p_value": float(rng.uniform(0, 0.2)) if test != "bootstrap" else None, "test": test}
            if with_ci:
                d["ci"] = [a - b - 0.04, a - b + 0.04]
            deltas[did][metric] = d
    labels = ["neg", "pos"] if k == 2 else [f"class_{c}" for c in range(k)]
    return {
        "schema_version": 1,
        "config": {"lang": lang, "alpha": 0.05, "base_model": "Qwen/Qwen2.5-1.5B", "adapter": "./out/adapter",
                   "n_bootstrap": 10000, "seed": 42, "batch_size": 16, "max_length": 256},
        "environment": {"torch": "2.13.0", "transformers": "4.99.0", "peft": "0.18.0", "device": "cpu"},
        "data": {"n": n, "labels": labels, "token_ids_sha256": "ab" * 32},
        "variants": vs,
        "deltas": deltas,
        "head": {"module": "score", "A_equals_B": True},
        "conclusion": [f"{did}: accuracy changed by {100 * deltas[did]['accuracy']['value']:+.1f} pp" for did in deltas],
        "checks": ["QPS of B and A differ by +1.3%: measurement noise."],
    }


# -- helpers --------------------------------------------------------------------------------------
def png_payloads(page: str) -> list[bytes]:
    return [base64.b64decode(m, validate=True) for m in IMG_RE.findall(page)]


def assert_valid_png(data: bytes) -> None:
    assert data.startswith(PNG_SIGNATURE)
    import matplotlib.image as mpimg
    img = mpimg.imread(io.BytesIO(data), format="png")
    assert img.shape[0] > 50 and img.shape[1] > 50
    assert float(np.ptp(img)) > 0  # not a blank canvas


@pytest.fixture(scope="module")
def binary_report() -> dict:
    return make_report()


@pytest.fixture(scope="module")
def binary_page(binary_report) -> str:
    return render_html(binary_report)


# -- structure ------------------------------------------------------------------------------------
def test_binary_page_has_every_piece(binary_report, binary_page):
    page = binary_page
    assert page.startswith("<!DOCTYPE html>")
    for vid, v in binary_report["variants"].items():
        assert report_html.esc(v["name"]) in page
    for did in ("B-A", "B-A1", "A1-A"):
        assert f"<td>{did}</td>" in page
    for line in binary_report["conclusion"] + binary_report["checks"]:
        assert report_html.esc(line) in page
    for label in ("Accuracy", "F1", "Precision", "Recall", "AUC-ROC", "Log loss", "Brier", "ECE",
                  "QPS (samples/s)", "Latency p95 (ms)", "McNemar exact", "DeLong"):
        assert label in page
    assert binary_report["data"]["token_ids_sha256"] in page and "3f" * 32 in page
    assert "n/a (only one class present)" in page  # R's undefined AUC, with its reason
    acc = binary_report["variants"]["B"]["metrics"]["accuracy"]
    text = re.sub(r"<[^>]+>", "", page)  # the CI sits in a <span> below the value
    assert f"{acc['value']:.4f} [{acc['ci'][0]:.4f}, {acc['ci'][1]:.4f}]" in text  # value [lo, hi]
    pngs = png_payloads(page)
    assert len(pngs) == 4 == page.count("<img")  # ROC, confusion, reliability, forest
    for data in pngs:
        assert_valid_png(data)


def test_page_is_self_contained(binary_page):
    refs = re.findall(r'\b(?:src|href|action|poster|srcset)\s*=\s*["\']?([^"\'\s>]*)', binary_page, re.I)
    assert refs and all(r.startswith("data:") for r in refs), refs
    assert not re.search(r"url\(|@import|<script|<link|<iframe", binary_page, re.I)
    assert "Content-Security-Policy" in binary_page


def test_strings_are_escaped():
    report = make_report(variants=("B", "A"), with_speed=False)
    report["variants"]["B"]["name"] = '<script>alert("x")</script>'
    report["data"]["labels"] = ["<neg>", "pos&"]
    report["conclusion"] = ["B < A & <b>bold</b>"]
    report["config"]["note"] = "<img src=https://evil.example/x.png>"
    report["variants"]["A"]["metrics"]["auc_roc"] = {"value": None, "reason": "<only> one class"}
    page = render_html(report)
    assert "<script" not in page and "<b>bold" not in page and "evil.example/x.png>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;neg&gt;" in page and "pos&amp;" in page
    assert "B &lt; A &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "n/a (&lt;only&gt; one class)" in page
    for data in png_payloads(page):  # non-ASCII-safe label text must not break plotting
        assert_valid_png(data)


def test_multiclass_renders_per_class_roc():
    report = make_report(k=3, n=300, seed=1)
    page = render_html(report)
    pngs = png_payloads(page)
    assert len(pngs) == 4
    for data in pngs:
        assert_valid_png(data)
    assert "class_2" in page and "DeLong" not in page


def test_minimal_report_without_a1_r_cis_or_speed():
    report = make_report(variants=("B", "A"), with_ci=False, with_speed=False, seed=2)
    page = render_html(report)
    assert "Frozen base + linear probe" not in page and "Base + random head" not in page
    assert "B-A1" not in page and "A1-A" not in page and "<td>B-A</td>" in page
    assert "<h2>Speed</h2>" not in page and "QPS (samples/s)" not in page  # no speed section at all
    acc = report["variants"]["B"]["metrics"]["accuracy"]["value"]
    assert f'<td class="num">{acc:.4f}</td>' in page  # no "[lo, hi]" without a CI
    assert len(png_payloads(page)) == 4


def test_nearly_empty_report_renders():
    page = render_html({"schema_version": 1, "variants": {}, "deltas": {}, "notes": None, "checks": []})
    assert "not available in this report" in page and "<img" not in page
    page = render_html({"variants": {"B": {"name": "only B", "metrics": {"accuracy": {"value": 0.5}}}}})
    assert "only B" in page and "0.5000" in page


def test_head_mismatch_is_flagged(binary_report):
    report = copy.deepcopy(binary_report)
    report["variants"]["A"]["head_sha256"] = "00" * 32
    page = render_html(report)
    assert '<span class="bad">NO</span>' in page
    assert '<span class="ok">yes</span>' in render_html({"variants": {"A": {"head_sha256": "x"}, "B": {"head_sha256": "x"}}})


def test_values_come_from_report_not_recomputed(binary_report):
    report = copy.deepcopy(binary_report)
    report["variants"]["B"]["metrics"]["accuracy"] = {"value": 0.123456, "ci": [0.1, 0.2]}
    report["deltas"]["B-A"]["accuracy"].update(value=0.0777, p_value=0.00001)
    page = render_html(report)
    assert "0.1235 <span class=\"ci\">[0.1000, 0.2000]</span>" in page and "+0.0777" in page and "&lt; 0.0001" in page


def test_chinese_lang():
    report = make_report(variants=("B", "A"), lang="zh", seed=3)
    report["variants"]["B"]["name"], report["variants"]["A"]["name"] = "LoRA微调", "冻结 + LoRA分类头"
    report["data"]["labels"] = ["负面", "正面"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. matplotlib's "Glyph ... missing from font"
        page = render_html(report)
    assert "LoRA微调" in page and "负面, 正面" in page
    assert '<html lang="zh-CN">' in page
    for text in ("各模型指标", "差异分析", "结论", "准确率", "速度对比", "混淆矩阵"):
        assert text in page
    assert len(png_payloads(page)) == 4


def test_write_html_is_atomic(tmp_path, monkeypatch):
    small = {"schema_version": 1, "variants": {}}
    out = tmp_path / "report.html"
    write_html(small, out)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    out.write_text("previous", encoding="utf-8")

    def boom(report):
        raise RuntimeError("render failed")

    monkeypatch.setattr(report_html, "render_html", boom)
    with pytest.raises(RuntimeError):
        write_html(small, out)
    assert out.read_text(encoding="utf-8") == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temp file left


def test_write_html_cleans_temp_on_write_error(tmp_path, monkeypatch):
    def fail_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(report_html.os, "replace", fail_replace)
    with pytest.raises(OSError):
        write_html({"variants": {}}, tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []


# -- headless Chromium -----------------------------------------------------------------------------
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
# Runs before the page's Content-Security-Policy meta (a meta policy only governs what follows it),
# so the page itself is checked under its own CSP: blocked loads show up as violations.
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
  document.body.setAttribute('data-probe', JSON.stringify({total: imgs.length, ok: ok, errors: window.__errs}));
});
</script>"""


def run_chromium(tmp_path, page_file, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
           f"--user-data-dir={tmp_path / 'profile'}", *args, page_file.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, cwd=tmp_path)


def probe(tmp_path, page: str, name: str) -> dict:
    f = tmp_path / name
    f.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    proc = run_chromium(tmp_path, f, "--dump-dom", "--virtual-time-budget=5000")
    m = re.search(r'data-probe="([^"]*)"', proc.stdout)
    assert m, f"probe did not run (rc={proc.returncode}): {proc.stderr[-2000:]}"
    import html
    return json.loads(html.unescape(m.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (apt-get install -y chromium)")
def test_page_in_headless_chromium(tmp_path, binary_page):
    result = probe(tmp_path, binary_page, "page.html")
    assert result == {"total": 4, "ok": 4, "errors": []}

    # The probe must be able to fail: a broken image and a network image are both reported.
    bad = binary_page.replace("</body>", '<img src="data:image/png;base64,AAAA">'
                              '<img src="https://example.invalid/x.png"></body>')
    result = probe(tmp_path, bad, "bad.html")
    assert result["total"] == 6 and result["ok"] == 4
    assert any("load failed" in e for e in result["errors"])
    assert any(e.startswith("csp:") for e in result["errors"]), result["errors"]

    page_file = tmp_path / "report.html"
    write_html(make_report(), page_file)
    shot = tmp_path / "shot.png"
    proc = run_chromium(tmp_path, page_file, f"--screenshot={shot}", "--window-size=1280,3000")
    assert shot.exists(), proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 50_000
    import matplotlib.image as mpimg
    img = mpimg.imread(io.BytesIO(data), format="png")
    assert img.shape[:2] == (3000, 1280)
    assert float(img[..., :3].std()) > 0.05  # not a blank page
