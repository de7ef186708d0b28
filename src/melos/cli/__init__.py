"""The `melos` command line: one entry point, one module per command.

Each command module has the same two functions: `add_parser(commands)` adds its sub-parser(s) and
`run(**kwargs)` runs it with the parsed arguments and returns the exit status. A new command is
one new module and one line in COMMANDS.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType
from typing import Sequence

from . import data, embed, features, index, lm, merge, probe, quickstart, report, search, sense, train

# command name -> module, in the order `melos --help` lists them (pretrain and adapt share a module)
COMMANDS: dict[str, ModuleType] = {
    "quickstart": quickstart,
    "data": data,
    "pretrain": train,
    "adapt": train,
    "features": features,
    "probe": probe,
    "report": report,
    "merge": merge,
    "embed": embed,
    "index": index,
    "search": search,
    "sense": sense,
    "lm": lm,
}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="melos",
        description="melos: pre-train, adapt, merge, evaluate and serve music audio encoders.",
        epilog="Run `melos COMMAND --help` for the options of a command.")
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"melos {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in dict.fromkeys(COMMANDS.values()):
        module.add_parser(commands)
    return parser


def run(command: str, **kwargs) -> int:
    """Run one command with parsed arguments; returns the exit status."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}")
    if command in ("pretrain", "adapt"):
        kwargs["command"] = command
    return COMMANDS[command].run(**kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    from ..audio import AudioError

    args = vars(get_parser().parse_args(argv))
    try:
        return run(**args)
    except (AudioError, FileNotFoundError, ValueError) as err:  # user errors: one clear line, no traceback
        print(f"melos: error: {err}", file=sys.stderr)
        return 2
