"""Keyword options -> config objects, and the API's docstrings written from the config fields' help text.

The CLI generates its options from the same fields (`lorafair.config.add_arguments`), so `lorafair.compare(
num_samples=100)` and `lorafair compare --num-samples 100` take one option, documented once.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import textwrap


def make_config(config_cls, config, options: dict, caller: str):
    """A `config_cls` from a config object and/or keyword options (options override the object's fields).

    An unknown option is a TypeError naming the closest field, as Python does for any unexpected keyword.
    """
    names = [f.name for f in dataclasses.fields(config_cls)]
    for name in options:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"{caller}() got an unexpected keyword argument {name!r}{hint}")
    options = {name: _plain(value) for name, value in options.items()}
    if config is None:
        return config_cls(**options)
    if not isinstance(config, config_cls):
        raise TypeError(f"{caller}() takes a {config_cls.__name__} or keyword options, not {type(config).__name__}")
    return dataclasses.replace(config, **options) if options else config


def _plain(value):
    """Paths as the strings the CLI would pass (also inside a list, e.g. several adapters)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _default_text(f: dataclasses.Field) -> str:
    if f.metadata.get("required"):
        return "required"
    return f"default {f.default!r}"


def options_doc(config_cls, width: int = 100) -> str:
    """One entry per field: `name (type, default ...)` and its help text, wrapped."""
    lines = []
    for f in dataclasses.fields(config_cls):
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        lines.append(f"    {f.name} ({kind}, {_default_text(f)})")
        indent = " " * 8  # option names such as --eval-fraction stay whole
        lines += textwrap.wrap(
            f.metadata.get("help", ""), width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
        )
    return "\n".join(lines)


def document(intro: str, config_cls, extra: str = ""):
    """Decorator: the function's docstring = `intro`, then every option of `config_cls` with its help text."""

    def attach(func):
        options = f"Options (keyword arguments; the fields of lorafair.config.{config_cls.__name__}):\n"
        func.__doc__ = inspect.cleandoc(intro) + "\n\n" + options + options_doc(config_cls) + extra
        return func

    return attach
