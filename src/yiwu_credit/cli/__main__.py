"""``python -m yiwu_credit.cli``."""

import sys

from .app import main

__all__: list[str] = []

sys.exit(main())
