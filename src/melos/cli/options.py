"""Options several commands share, spelled and explained the same way everywhere."""

from __future__ import annotations

import argparse


def add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def add_allow_truncated(p: argparse.ArgumentParser, then: str) -> None:
    """--allow-truncated, saying what the command does with the part of a truncated file that decodes."""
    p.add_argument("--allow-truncated", action="store_true",
                   help="a file that ends early (partial download, full disk: its container declares more audio "
                        "than it holds) is by default reported as truncated and left out; with this flag it is "
                        f"decoded as far as it goes and {then}, with a warning naming it. Use it when the "
                        "complete file cannot be fetched again and a shorter one is fine")


def add_overrides(p: argparse.ArgumentParser, what: str, example: str) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a {what}, e.g. --set {example} (repeatable)")
