"""`melos search`: the tracks (or windows) of an index most similar to a query."""

from __future__ import annotations

import argparse
import json

HELP = """\
Find the music most similar to a query in an index made by `melos index build`.

The query is an audio file (embedded with the index's own model, layer and window settings,
its windows averaged), a .npy vector ([H], or [n, H] averaged) or a melos embed .safetensors.
The score is the cosine similarity (1 = same direction, 0 = unrelated) between the query and
each indexed vector; a window-level index answers with the matching windows' times.

examples:
  melos search music.index --query song.flac
  melos search music.index --query song.flac -k 20 --where "culture = 'makam'"
  melos search windows.index --query emb/song.flac.safetensors --where "split != 'test'" --json
  melos search music.index --query song.flac --model ~/models/MERT-v1-95M   # checkpoint moved
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("search", help="find the tracks or windows of an index most similar to a query",
                            description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("index", metavar="INDEX", help="index folder made by melos index build")
    p.add_argument("--query", required=True, help="audio file, .npy vector or melos embed .safetensors")
    p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--where", help="SQL filter on manifest columns, e.g. \"culture = 'makam'\" or "
                                   "\"culture IN ('raga', 'makam') AND duration > 60\"")
    p.add_argument("--exact", action="store_true", help="exact search even where an ANN index exists")
    p.add_argument("--nprobes", type=int, help="ANN partitions searched per query (default: a quarter of them, "
                                               "at least 128); more is slower and closer to exact")
    p.add_argument("--model", help="encoder for audio queries (default: the one the index records)")
    p.add_argument("--device", default="cpu", help="where to embed an audio query (default cpu)")
    p.add_argument("--json", dest="as_json", action="store_true", help="one JSON object per result instead of a table")


def run(index: str, query: str, k: int, where: str | None, exact: bool, nprobes: int | None, model: str | None,
        device: str, as_json: bool) -> int:
    from ..search import VectorIndex, query_vector

    vector_index = VectorIndex.open(index)
    hits = vector_index.search(query_vector(query, vector_index.info, model, device), k, where, exact, nprobes)
    window = vector_index.info.window
    for rank, hit in enumerate(hits, start=1):
        if as_json:
            print(json.dumps({"rank": rank, "score": hit.score, "path": hit.path, "start": hit.start,
                              "window": hit.window, **hit.columns}, default=str))
        else:
            at = "" if hit.start is None else f"  {hit.start:7.1f}-{hit.start + window:.1f} s"
            columns = "".join(f"  {name}={value}" for name, value in hit.columns.items()
                              if not isinstance(value, (list, dict)))
            print(f"{rank:3d}  {hit.score:.4f}{at}  {hit.path}{columns}")
    if not hits:
        print("no results" + (f": no row passes --where {where!r}" if where else ""))
    return 0
