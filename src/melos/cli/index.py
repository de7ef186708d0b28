"""`melos index build|add|info`: a vector index over `melos embed` outputs, for `melos search`."""

from __future__ import annotations

import argparse
import sys

HELP = """\
Build a vector index over the embeddings `melos embed` wrote, for `melos search`.

One layer is indexed, per track (a file's window embeddings averaged) or per window (each
window with its start time). Vectors are L2-normalised and searched by cosine similarity. The
index is a folder (a LanceDB table on disk, so it can outgrow memory, and melos-index.json with
the model, layer and window settings queries must match). Small indexes are searched exactly;
from 50,000 rows on an approximate IVF_HNSW_SQ index is built (recall@10 0.98 against exact
search in benchmarks; --ann none keeps exact search at any size).

Both embed formats are read: <file>.safetensors + index.jsonl, or parquet/part-*.parquet.
--manifest adds the fields of a JSONL manifest (e.g. the one given to `melos embed --input`)
as columns to filter on (`melos search --where "culture = 'makam'"`), joined on the audio path.

examples:
  melos embed --model ~/models/MERT-v1-95M --input music.jsonl --out emb/ --layers 6,12
  melos index build emb/ --layer 6 --out music.index --manifest music.jsonl
  melos index build emb/ --layer 12 --level window --out windows.index
  melos index add music.index new-emb/ --manifest new.jsonl   # files already indexed are skipped
  melos index info music.index
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("index", help="build a vector index over melos embed outputs (for melos search)",
                            description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="index_command", metavar="INDEX_COMMAND", required=True)
    q = sub.add_parser("build", help="index one layer of an embedding folder into a new index folder",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("emb_dir", metavar="EMB_DIR", help="output folder of melos embed")
    q.add_argument("--layer", type=int, required=True,
                   help="hidden-state index to search by (as in melos embed --layers)")
    q.add_argument("--level", choices=("track", "window"), default="track",
                   help="track: one row per file, the mean of its windows (default); window: one row per window")
    q.add_argument("--out", required=True, help="index folder to write (replaced if it exists)")
    q.add_argument("--manifest",
                   help="JSONL manifest whose fields (culture, instrument, ...) become filterable columns")
    q.add_argument("--ann", choices=("auto", "none", "IVF_HNSW_SQ", "IVF_PQ"), default="auto",
                   help="approximate index: auto (IVF_HNSW_SQ from 50,000 rows, default), none (always exact), "
                        "or a type built at any size")
    q = sub.add_parser("add", help="append the new files of an embedding folder to an index")
    q.add_argument("index", metavar="INDEX", help="index folder made by melos index build")
    q.add_argument("emb_dir", metavar="EMB_DIR", help="output folder of melos embed (same model and window settings)")
    q.add_argument("--manifest", help="JSONL manifest with the new files' fields")
    q = sub.add_parser("info", help="print what an index holds")
    q.add_argument("index", metavar="INDEX", help="index folder")


def run(index_command: str, **kwargs) -> int:
    from ..search import VectorIndex

    if index_command == "build":
        index, report = VectorIndex.create(kwargs["out"], kwargs["emb_dir"], kwargs["layer"], kwargs["level"],
                                           kwargs["manifest"], kwargs["ann"])
        _print_report(report, index)
    elif index_command == "add":
        index = VectorIndex.open(kwargs["index"])
        report = index.add(kwargs["emb_dir"], kwargs["manifest"])
        _print_report(report, index)
    else:
        index = VectorIndex.open(kwargs["index"])
        i = index.info
        columns = [n for n in index.table.schema.names if n not in ("path", "window", "start", "n_windows", "vector")]
        print(f"{index.folder}: {len(index)} {i.level} rows, layer {i.layer} of {i.model}, dim {i.dim}, "
              f"window {i.window:g} s hop {i.hop:g} s, {i.metric}")
        print(f"search: {'ANN ' + str(i.ann_built) if i.ann_built else 'exact (flat)'}")
        print(f"columns: {', '.join(columns) if columns else '(none)'}")
    return 0


def _print_report(report, index) -> None:
    print(f"indexed {report.n_rows} {index.info.level} rows from {report.n_files} files "
          f"({report.n_skipped_files} already indexed) -> {index.folder} ({len(index)} rows, "
          f"{'ANN ' + index.info.ann_built['index_type'] if index.info.ann_built else 'exact search'})")
    if report.n_unmatched_files:
        print(f"  warning: {report.n_unmatched_files} files have no manifest row (their columns are null)",
              file=sys.stderr)
    if report.dropped_columns:
        print(f"  note: manifest fields not indexed (nested objects, or absent from the index): "
              f"{', '.join(report.dropped_columns)}", file=sys.stderr)
