"""Reading data a user really has: empty cells, broken JSON lines, files saved as GBK or latin-1.

Valid data is never refused (rows without a text or label are dropped and counted, the rest keep their label
type); a file that cannot be read is one line naming where; no byte is decoded by guess.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from lorafair.cli import main
from lorafair.core.errors import LorafairError
from lorafair.data import examples as data
from lorafair.report import words as report_words

from conftest import toy_rows

ROOT = Path(__file__).resolve().parents[2]

FAST = ["--quiet", "--variants", "B,A", "--bootstrap", "0", "--num-samples", "0", "--no-analysis"]
CHINESE = ["很好", "电影", "不推荐", "演员表演", "剧情，拖沓"]
ACCENTED = ["café", "crème", "naïve", "über", "señor"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LORAFAIR_CACHE", str(tmp_path / "cache"))  # held-out rows are written here


def _int_rows(n: int = 30) -> list[dict]:
    """Toy rows with integer labels 0 (neg) / 1 (pos)."""
    return [{"text": r["text"], "label": int(r["label"] == "pos")} for r in toy_rows(n, seed=11)]


def _with_label_names(setup, tmp_path):
    """The adapter, with a lorafair_run.json naming its labels neg/pos (as `lorafair train` writes)."""
    adapter = shutil.copytree(setup.adapter, tmp_path / "adapter")
    (adapter / "lorafair_run.json").write_text(json.dumps({"label_names": ["neg", "pos"]}))
    return adapter


def _write(rows: list[dict], path, *, encoding: str = "utf-8"):
    """CSV/TSV through the csv module, JSONL by hand (None -> JSON null): not through lorafair's readers."""
    if path.suffix == ".jsonl":
        lines = [json.dumps(r, ensure_ascii=False) for r in rows]
        path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
        return path
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t" if path.suffix == ".tsv" else ",")
        writer.writeheader()
        writer.writerows([{k: "" if v is None else v for k, v in r.items()} for r in rows])
    return path


def _compare(adapter, data_file, out, *extra) -> int:
    return main(["compare", "--adapter", str(adapter), "--data", str(data_file), "--output", str(out), *FAST, *extra])


def _outputs(out) -> tuple[dict, str]:
    return json.loads((out / "report.json").read_text(encoding="utf-8")), (out / "predictions.csv").read_text()


# ------------------------------------------------------------------------------------- valid data refused
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_empty_label_and_text_cells_are_dropped_and_integer_labels_kept(suffix, llama_setup, tmp_path, capsys):
    rows = _int_rows()
    dirty = [dict(r) for r in rows]
    dirty[5]["label"] = None if suffix == ".jsonl" else ""  # an export artefact: one empty label cell
    dirty[11]["text"] = "   "  # and one text of blanks
    clean = [r for i, r in enumerate(rows) if i not in (5, 11)]  # the same file, the two rows removed by hand
    adapter = _with_label_names(llama_setup, tmp_path)
    dirty_file, clean_file = _write(dirty, tmp_path / f"dirty{suffix}"), _write(clean, tmp_path / f"clean{suffix}")

    assert _compare(adapter, dirty_file, tmp_path / "dirty") == 0, capsys.readouterr().err
    assert _compare(adapter, clean_file, tmp_path / "clean") == 0, capsys.readouterr().err
    (report, predictions), (clean_report, clean_predictions) = (
        _outputs(tmp_path / "dirty"),
        _outputs(tmp_path / "clean"),
    )
    assert report["data"]["dropped_rows"] == 2 and clean_report["data"]["dropped_rows"] == 0
    assert report["data"]["n"] == len(rows) - 2 == clean_report["data"]["n"]
    assert predictions == clean_predictions  # every prediction and probability of every kept row
    labels = [line["label"] for line in csv.DictReader(predictions.splitlines())]
    assert labels == [["neg", "pos"][r["label"]] for r in clean]  # integer labels read as ids, in file order


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet", "disk"])
def test_every_format_keeps_integer_labels_after_dropping_an_empty_one(fmt, tmp_path):
    labels = [0, 1, 1, 0, None, 1, 0]
    texts = [f"t{i}" for i in range(len(labels))]
    path = tmp_path / f"d.{fmt}"
    if fmt in ("csv", "tsv"):
        _write([{"text": t, "label": v} for t, v in zip(texts, labels)], tmp_path / f"d.{fmt}")
    elif fmt in ("json", "jsonl"):
        records = [{"text": t, "label": v} for t, v in zip(texts, labels)]
        path.write_text(json.dumps(records) if fmt == "json" else "\n".join(map(json.dumps, records)))
    else:  # as a CSV export with an empty cell reaches Parquet: a column of strings "0", "1", ""
        frame = pd.DataFrame({"text": texts, "label": ["" if v is None else str(v) for v in labels]})
        if fmt == "parquet":
            frame.to_parquet(path)
        else:
            import datasets

            datasets.Dataset.from_pandas(frame).save_to_disk(str(path))
    examples = data.load_examples(path)
    assert examples.dropped == 1 and examples.texts == texts[:4] + texts[5:]
    assert examples.labels == [0, 1, 1, 0, 1, 0] and all(type(v) is int for v in examples.labels)


def test_csv_labels_are_typed_like_pandas_once_the_empty_cells_are_gone(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,1.0\nb,\nc,2.5\nd,-3\n")
    assert data.load_examples(path).labels == [1, 2.5, -3]  # what pd.read_csv gives without the empty cell
    path.write_text("text,label\na,pos\nb,\nc,1\n")
    assert data.load_examples(path).labels == ["pos", "1"]  # not all numbers: names
    path.write_text("text,label\n007,1\n1.50,0\n")
    assert data.load_examples(path).texts == ["007", "1.50"]  # texts stay as written


def test_a_digit_string_label_is_an_id_exactly_like_an_int():
    assert data.encode_labels(["1", "0", 1, " 0"], ["neg", "pos"]).tolist() == [1, 0, 1, 0]
    assert data.encode_labels(["1", "0"], ["1", "0"]).tolist() == [0, 1]  # a name wins over an id
    for bad in ("2", "-1", "1.0", True):
        with pytest.raises(LorafairError, match="labels the head does not know"):
            data.encode_labels([bad], ["neg", "pos"])


# ------------------------------------------------------------------------------------- malformed JSON
def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lorafair: error: "), err
    return err[0]


def test_a_bad_jsonl_line_is_named(llama_setup, tmp_path, capsys):
    lines = [json.dumps(r) for r in toy_rows(10, seed=2)]
    lines.insert(3, "")  # a blank line is skipped, but still counted in the line numbers
    lines[6] = lines[6].replace('", "label"', '" "label"')  # physical line 7 loses a comma
    (tmp_path / "x.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert _compare(llama_setup.adapter, tmp_path / "x.jsonl", out) == 2
    line = _one_error_line(capsys)
    assert "could not read data file" in line and "x.jsonl': line 7 is not valid JSON (Expecting ',' delimiter" in line
    assert not out.exists()


def test_a_json_file_that_is_not_json_says_where(llama_setup, tmp_path, capsys):
    text = json.dumps(toy_rows(6, seed=2), indent=1).splitlines()
    text[7] = text[7].replace(":", "", 1)  # line 8: '  "label" "neg"', the colon lost: column 11 is the quote
    (tmp_path / "x.json").write_text("\n".join(text))
    out = tmp_path / "out"
    assert _compare(llama_setup.adapter, tmp_path / "x.json", out) == 2
    line = _one_error_line(capsys)
    assert "x.json': not valid JSON at line 8, column 11 (Expecting ':' delimiter)" in line
    assert not out.exists()


def test_json_lines_under_a_json_name_still_read(tmp_path):
    rows = toy_rows(6, seed=2)
    (tmp_path / "x.json").write_text("\n".join(json.dumps(r) for r in rows))
    assert data.load_examples(tmp_path / "x.json").texts == [r["text"] for r in rows]


# ------------------------------------------------------------------------------------- legacy encodings
def _words_rows(words: list[str]) -> list[dict]:
    """Toy rows (the tiny tokenizer knows their words) with a word of `words` in each."""
    return [{"text": f"{r['text']} {words[i % len(words)]}", "label": r["label"]} for i, r in enumerate(toy_rows(24))]


@pytest.mark.parametrize(("encoding", "words"), [("gbk", CHINESE), ("latin-1", ACCENTED)])
def test_a_legacy_encoding_needs_encoding_and_then_reads_as_utf8(encoding, words, llama_setup, tmp_path, capsys):
    rows = _words_rows(words)
    legacy, utf8 = _write(rows, tmp_path / "legacy.csv", encoding=encoding), _write(rows, tmp_path / "utf8.csv")

    out = tmp_path / "refused"
    assert _compare(llama_setup.adapter, legacy, out) == 2
    line = _one_error_line(capsys)
    assert "legacy.csv' is not UTF-8" in line and "--encoding" in line and "(line 2)" in line
    assert not out.exists()

    assert [r["text"] for r in rows] == data.load_examples(legacy, encoding=encoding).texts  # the very strings
    assert _compare(llama_setup.adapter, legacy, tmp_path / "legacy", "--encoding", encoding) == 0
    assert _compare(llama_setup.adapter, utf8, tmp_path / "utf8") == 0
    (report, predictions), (utf8_report, utf8_predictions) = _outputs(tmp_path / "legacy"), _outputs(tmp_path / "utf8")
    assert report["data"]["n"] == len(rows) == utf8_report["data"]["n"]
    assert report["data"]["token_ids_sha256"] == utf8_report["data"]["token_ids_sha256"]
    assert predictions == utf8_predictions


def test_the_hint_names_a_likely_encoding(tmp_path):
    cases = {"gbk": ("gb18030", CHINESE), "latin-1": ("latin-1", ACCENTED), "cp1252": ("cp1252", ["“quoted”"])}
    for encoding, (hint, words) in cases.items():
        path = _write(_words_rows(words), tmp_path / f"{encoding}.csv", encoding=encoding)
        with pytest.raises(LorafairError, match=f"likely --encoding {hint}$"):
            data.load_examples(path)


def test_an_unknown_or_wrong_encoding_is_one_line(llama_setup, tmp_path, capsys):
    path = _write(_words_rows(CHINESE), tmp_path / "gbk.csv", encoding="gbk")
    for encoding, expected in (("no-such-codec", "unknown text encoding"), ("base64", "unknown text encoding")):
        assert _compare(llama_setup.adapter, path, tmp_path / "out", "--encoding", encoding) == 2
        assert f"--encoding {encoding} ({expected}" in _one_error_line(capsys)
    assert _compare(llama_setup.adapter, path, tmp_path / "out", "--encoding", "utf-8") == 2
    assert "gbk.csv' is not utf-8: byte" in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_train_records_the_encoding_and_compare_reads_its_data_with_it(llama_setup, tmp_path, cache, capsys):
    """The GBK training file is read back as GBK for the held-out rows and for A1's probe (same data budget)."""
    rows = _words_rows(CHINESE)
    train_file = _write(rows, tmp_path / "train.csv", encoding="gbk")
    adapter = tmp_path / "adapter"
    argv = ["train", "--base-model", str(llama_setup.base), "--data", str(train_file), "--output", str(adapter)]
    argv += ["--encoding", "gbk", "--max-steps", "2", "--batch-size", "8", "--eval-fraction", "0.25", "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    run = json.loads((adapter / "lorafair_run.json").read_text(encoding="utf-8"))
    assert run["train_data"]["encoding"] == "gbk"
    held_out = run["eval_data"]["indices"]

    # no --data: the held-out rows, written out once as UTF-8, are the very GBK rows the adapter held out
    assert main(["quick", "--adapter", str(adapter), "--output", str(tmp_path / "quick"), *FAST]) == 0
    report, _ = _outputs(tmp_path / "quick")
    held_file = report["data"]["source"]
    held_texts = [json.loads(line)["text"] for line in open(held_file, encoding="utf-8")]
    assert held_texts == [rows[i]["text"] for i in held_out]

    # other (UTF-8) evaluation data: A1 trains on the adapter's GBK training rows, read with the recorded encoding
    eval_file = _write(_words_rows(ACCENTED), tmp_path / "eval.csv")
    out = tmp_path / "probe"
    assert _compare(adapter, eval_file, out, "--variants", "B,A,A1") == 0, capsys.readouterr().err
    report, _ = _outputs(out)
    n_trained = len(rows) - len(held_out)
    (probe,) = [n for n in report["notes"] if n["kind"] == "probe_training_rows"]
    assert probe["examples"] == probe["trained"] == n_trained
    assert f"probe trained on the adapter's {n_trained} training examples" in report_words.note_sentence(probe, "en")

    # the training file itself as evaluation data, with --encoding: A1 takes its training rows outside the sample
    out = tmp_path / "same-file"
    extra = ("--encoding", "gbk", "--variants", "B,A,A1", "--num-samples", "8")
    assert _compare(adapter, train_file, out, *extra) == 0, capsys.readouterr().err
    report, _ = _outputs(out)
    outside = sorted(set(range(len(rows))) - set(held_out) - set(report["data"]["indices"]))
    (probe,) = [n for n in report["notes"] if n["kind"] == "probe_training_rows"]
    assert (probe["examples"], probe["trained"]) == (len(outside), n_trained)
    assert f"probe trained on {len(outside)} of the adapter's {n_trained}" in report_words.note_sentence(probe, "en")


def test_quick_reads_recorded_eval_data_with_its_recorded_encoding(llama_setup, tmp_path, cache, capsys):
    rows = _words_rows(CHINESE)
    eval_file = _write(rows, tmp_path / "eval.csv", encoding="gbk")
    adapter = shutil.copytree(llama_setup.adapter, tmp_path / "adapter")
    recorded = {"path": str(eval_file), "encoding": "gbk", "text_column": "text", "label_column": "label"}
    (adapter / "lorafair_run.json").write_text(json.dumps({"label_names": ["neg", "pos"], "eval_data": recorded}))
    assert main(["quick", "--adapter", str(adapter), "--output", str(tmp_path / "quick"), *FAST]) == 0
    report, predictions = _outputs(tmp_path / "quick")
    assert report["data"]["source"] == str(eval_file) and report["data"]["n"] == len(rows)
    assert _compare(adapter, _write(rows, tmp_path / "utf8.csv"), tmp_path / "utf8") == 0
    assert predictions == _outputs(tmp_path / "utf8")[1]


def test_resume_of_a_run_from_before_encoding_was_an_option(tmp_path):
    from lorafair.training.train import _check_resume_matches

    saved = {"encoding": "auto", "seed": 0, "lora_r": 8}
    (tmp_path / "old.json").write_text(json.dumps({k: v for k, v in saved.items() if k != "encoding"}))
    _check_resume_matches(tmp_path / "old.json", saved)  # absent from the old file: its default, auto
    with pytest.raises(LorafairError, match="encoding: 'auto' -> 'gbk'"):
        _check_resume_matches(tmp_path / "old.json", {**saved, "encoding": "gbk"})


def test_the_seed_scripts_pass_the_encoding_on(llama_setup, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from model_evaluation.run_full_eval import build_parser, to_lorafair_argv
    from model_evaluation.utils import load_evaluation_data

    rows = _words_rows(ACCENTED)
    path = _write(rows, tmp_path / "latin.csv", encoding="latin-1")
    texts, labels = load_evaluation_data(str(llama_setup.adapter), str(path), encoding="latin-1")
    assert texts == [r["text"] for r in rows] and labels == [int(r["label"] == "pos") for r in rows]
    args = build_parser().parse_args(["--model_path", "a", "--data", str(path), "--encoding", "latin-1"])
    argv = to_lorafair_argv(args, "B,A")
    assert argv[argv.index("--encoding") + 1] == "latin-1"
