"""``python -m feedback COMMAND ...`` (installed: ``chat-feedback COMMAND ...``): one small module per command.

Each command module exposes ``register(subparsers)``, which adds its parser(s) and sets
``func=callable(args) -> int`` (the exit code) as its default.

A command's module, and with it what the command needs (gradio for ``review``, the Hub client, ...),
is imported only when that command runs or its ``--help`` is asked: :data:`COMMANDS` names each
command's module and its line in ``python -m feedback --help``, which imports none of them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "serve the chat app (what `python app.py` does)"),
    "replay": ("replay", "drive a running app with recorded conversations"),
    "push": ("hub", "upload a local data dir to a dataset repo"),
    "pull": ("hub", "download a dataset repo into a local data dir"),
    "review": ("review", "open the reviewer page on a data dir or a dataset repo"),
    "stats": ("review", "print ratings, like rates, flags and queue size (and a queue page)"),
    "export": ("export", "build a fine-tuning dataset or the review queue"),
    "compact": ("compact", "compact a dataset repo (days older than a day) and write its flagged view"),
    "delete": ("delete", "delete conversations from a data dir or a dataset repo"),
}
"""Command -> (the module of ``feedback.cli`` that adds it, its one-line help), in listing order.
A module may add several commands (``hub``: push and pull)."""


def build_parser(prog: str = "python -m feedback", command: str | None = None) -> argparse.ArgumentParser:
    """The ``python -m feedback`` argument parser.

    Args:
        prog: the program name the usage lines show.
        command: the command to parse: its module is imported and adds its full parser (and
            those of the other commands it holds); every other command gets a stub that only
            lists it. None, or a name that is no command: stubs only (``--help``, or argparse's
            "invalid choice" error).
    """
    parser = argparse.ArgumentParser(prog=prog, description="chat-feedback command line")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if command in COMMANDS:
        importlib.import_module(f"feedback.cli.{COMMANDS[command][0]}").register(subparsers)
    for name, (_, summary) in COMMANDS.items():
        if name not in subparsers.choices:
            subparsers.add_parser(name, help=summary, add_help=False)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names: its first argument that is not an option (the top-level parser has
    no option that takes a value), or None."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None, prog: str = "chat-feedback") -> int:
    """Parse ``argv`` and run the command. Returns the exit code.

    The ``chat-feedback`` console script of an installed copy; ``python -m feedback`` passes its own
    ``prog`` (the name the usage lines show).
    """
    from feedback.logs import setup_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog, command_of(argv)).parse_args(argv)
    setup_logging(getattr(args, "log_level", "INFO"))
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
