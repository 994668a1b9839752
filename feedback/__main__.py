"""Entry point of ``python -m feedback`` (the same as the ``chat-feedback`` console script)."""

import sys

from feedback.cli import main

sys.exit(main(prog="python -m feedback"))
