"""lorafair: what did LoRA fine-tuning actually do to a model's features?

A paired, fair comparison of a LoRA sequence classifier (B) against its frozen base carrying the
very same classification head (A), a linear probe on frozen features (A1) and, for reference only,
the base with a random head (R). See DESIGN.md for the design.

    import lorafair
    result = lorafair.compare(adapter="outputs/lora_adapter", data="test.csv")   # lorafair.api

The API's names load on first use (module `__getattr__`), so `import lorafair` and `lorafair --help` stay fast.
"""

from lorafair.core.errors import LorafairError
from lorafair.core.version import VERSION as __version__

_API = (
    "compare",
    "sweep",
    "train",
    "demo",
    "read_report",
    "render_report",
    "CompareResult",
    "SweepResult",
    "TrainResult",
    "DemoResult",
)

__all__ = ["LorafairError", "__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from lorafair import api

        return getattr(api, name)
    raise AttributeError(f"module 'lorafair' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
