"""Entry point of ``python -m feedback``."""

import sys

from feedback.cli import main

sys.exit(main())
