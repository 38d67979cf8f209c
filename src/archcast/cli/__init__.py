"""The ``archcast`` command line: argparse only, one module per command group.

Nothing in the library imports this package. Every error a user can cause prints one line
(``archcast: error: ...``) and exits non-zero; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence

from archcast.errors import ArchcastError

# command groups, in the order ``archcast --help`` lists them
GROUPS = ("inspect", "predict", "train", "bench", "zoo", "profile", "db", "dataset", "adapt", "serve")


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line naming the problem, with the hint where the usage is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    p = OneLineParser(prog="archcast", description="Predict a network's latency and accuracy from its graph.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        importlib.import_module(f"{__name__}.{group}").register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from archcast._version import __version__

        print(__version__)
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ArchcastError as e:
        if args.debug:
            raise
        print(f"archcast: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path the user gave cannot be read or written
        if args.debug:
            raise
        where = f" {e.filename!r}" if getattr(e, "filename", None) else ""
        print(f"archcast: error: cannot use{where}: {e.strerror or e}", file=sys.stderr)
        return 2
    except MemoryError:
        if args.debug:
            raise
        print("archcast: error: out of memory (the input is too large for this machine)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archcast: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one line for users; --debug shows the traceback
        if args.debug:
            raise
        print(f"archcast: internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1

