"""`melos report`: merge probing results into one table, layer-wise curves and a heat map."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("report", help="merge probing results into one table and draw plots",
                            description="Merge results.json files of `melos probe` into table.md, layer-wise "
                                        "curves per task (layers_<task>.png) and a model x task heat map. Runs of "
                                        "`melos probe --suite` add their suite's table beside the published "
                                        "numbers, so a culturemert and an efficient run merge into one report.")
    p.add_argument("results", nargs="+", help="results.json files")
    p.add_argument("--out", required=True, help="folder for table.md and the PNG plots")


def run(results: list[str], out: str) -> int:
    from ..evaluation.report import merge_results, write_report

    written = write_report(merge_results(results), out)
    print((Path(out) / "table.md").read_text())
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
