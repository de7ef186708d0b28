"""`python -m melos.cli ...` (what torchrun launches): the same as `melos ...`."""

import sys

from . import main

sys.exit(main())
