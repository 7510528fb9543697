"""Keep third-party chatter off the console while lorafair's own calls run; `-v` shows everything.

    from lorafair.core.quiet import quiet_third_party
    with quiet_third_party(verbose=args.verbose):
        result = run_compare(cfg)

Inside the block: transformers / huggingface_hub / datasets progress bars ("Loading weights", downloads,
dataset maps) are off, the Python loggers of transformers, peft, accelerate, datasets, huggingface_hub
and torch show errors only, and deprecation warnings (FutureWarning, DeprecationWarning) are ignored.
lorafair's own tqdm bars, log lines and tables are untouched. Everything is restored on exit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator

THIRD_PARTY_LOGGERS = ("transformers", "peft", "accelerate", "datasets", "huggingface_hub", "torch")
# The deprecation notices third-party code raises on every run (peft calling transformers' deprecated
# is_gradient_checkpointing, torch's TypedStorage, ...): useful to their maintainers, noise to a user.
SILENCED_CATEGORIES = (FutureWarning, DeprecationWarning, PendingDeprecationWarning)
DATASETS_ENV = "HF_DATASETS_DISABLE_PROGRESS_BARS"


@contextlib.contextmanager
def quiet_third_party(verbose: bool = False) -> Iterator[None]:
    """Silence third-party progress bars, logging below ERROR and deprecation warnings; no-op if verbose."""
    if verbose:
        yield
        return
    with contextlib.ExitStack() as stack:
        stack.enter_context(_loggers_at_error())
        stack.enter_context(_progress_bars_off())
        stack.enter_context(warnings.catch_warnings())
        for category in SILENCED_CATEGORIES:
            warnings.filterwarnings("ignore", category=category)
        yield


@contextlib.contextmanager
def _loggers_at_error() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    # transformers sets its library logger to WARNING the first time it is used: make that happen now, or the
    # first model load inside the block would undo the ERROR level set here
    hf_logging.get_verbosity()
    loggers = [logging.getLogger(name) for name in THIRD_PARTY_LOGGERS]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def _progress_bars_off() -> Iterator[None]:
    """transformers' and huggingface_hub's bars through their switches, restored after.

    datasets is heavy to import: its switch is used only when it is already imported; otherwise its
    environment variable is set for the block, so an import inside the block starts with bars off.
    """
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as hf_logging

    hub_was_on = not hub_utils.are_progress_bars_disabled()
    hf_was_on = hf_logging.is_progress_bar_enabled()
    datasets_tqdm = sys.modules.get("datasets.utils.tqdm")
    datasets_was_on = datasets_tqdm is not None and not datasets_tqdm.are_progress_bars_disabled()
    env_before = os.environ.get(DATASETS_ENV)
    hf_logging.disable_progress_bar()  # also turns huggingface_hub's off
    if datasets_was_on:
        datasets_tqdm.disable_progress_bars()
    if datasets_tqdm is None and env_before is None:
        os.environ[DATASETS_ENV] = "1"
    try:
        yield
    finally:
        if hf_was_on:
            hf_logging.enable_progress_bar()
        if not hub_was_on:
            hub_utils.disable_progress_bars()
        if datasets_was_on:
            datasets_tqdm.enable_progress_bars()
        if env_before is None:
            os.environ.pop(DATASETS_ENV, None)
