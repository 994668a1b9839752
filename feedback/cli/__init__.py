"""``python -m feedback COMMAND ...`` (installed: ``chat-feedback COMMAND ...``): one small module per command.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``func=callable(args) -> int`` (the exit code) as its default.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = ("serve", "replay", "hub", "review", "export")
"""Modules of ``feedback.cli`` that each add one subcommand."""


def build_parser(prog: str = "python -m feedback") -> argparse.ArgumentParser:
    """The ``python -m feedback`` argument parser with every command's subparser."""
    parser = argparse.ArgumentParser(prog=prog, description="chat-feedback command line")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"feedback.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "chat-feedback") -> int:
    """Parse ``argv`` and run the command. Returns the exit code.

    The ``chat-feedback`` console script of an installed copy; ``python -m feedback`` passes its own
    ``prog`` (the name the usage lines show).
    """
    from feedback.logs import setup_logging

    args = build_parser(prog).parse_args(argv)
    setup_logging(getattr(args, "log_level", "INFO"))
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
