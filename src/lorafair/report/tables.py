"""The report's tables and sections as data, shared by every medium (console, Markdown, HTML).

A leaf of the report package: the section builders fill these, the renderers format them.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field


@dataclass
class Table:
    """A table as data: every medium formats the same headers and rows."""

    headers: list[str]
    rows: list[list[str]]
    title: str = ""
    numeric: list[bool] = field(default_factory=list)  # per column: right-aligned in HTML
    marks: list[str | None] = field(default_factory=list)  # per row: "better" / "worse" (significant) or None
    after: list[str] = field(default_factory=list)  # lines printed below the table


@dataclass
class Section:
    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # bullet lines


def ordered(mapping: dict, order: tuple) -> list:
    """Keys of `mapping` in the canonical order first, then any others as they come."""
    keys = [k for k in order if k in mapping]
    return keys + [k for k in mapping if k not in keys]


def esc(value: object) -> str:
    """HTML-escaped text (quotes too), for every HTML renderer."""
    return html.escape(str(value), quote=True)
