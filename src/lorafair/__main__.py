"""`python -m lorafair …` (also what `torchrun -m lorafair compare …` runs)."""

import sys

from lorafair.cli import main

sys.exit(main())
