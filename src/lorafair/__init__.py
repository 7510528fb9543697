"""lorafair: what did LoRA fine-tuning actually do to a model's features?

A paired, fair comparison of a LoRA sequence classifier (B) against its frozen base carrying the
very same classification head (A), a linear probe on frozen features (A1) and, for reference only,
the base with a random head (R). See DESIGN.md for the design.
"""

from lorafair.core.errors import LorafairError
from lorafair.core.version import VERSION as __version__

__all__ = ["LorafairError", "__version__"]
