"""What every subcommand module shares."""

from __future__ import annotations

import os


def is_writer() -> bool:
    """Under torchrun/accelerate only rank 0 writes files and prints reports."""
    return int(os.environ.get("RANK", "0")) == 0
