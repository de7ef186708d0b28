"""`melos search`: the tracks (or windows) of an index most similar to a query."""

from __future__ import annotations

import argparse
import json

HELP = """\
Find the music most similar to a query in an index made by `melos index build`.

The query is an audio file (embedded with the index's own model, layer and window settings,
its windows averaged), a .npy vector ([H], or [n, H] averaged) or a melos embed .safetensors.
--start/--end take only the windows of the query file whose middle lies in that time range
(seconds). Each result shows the cosine similarity (1 = same direction, 0 = unrelated), the
cosine distance (1 - similarity) and, in a window-level index, the matched window's time range.

examples:
  melos search music.index --query song.flac
  melos search music.index --query song.flac -k 20 --where "culture = 'makam'"
  melos search windows.index --query song.ogg --start 30 --end 60
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
    p.add_argument("--probes", type=int, help="inverted-file lists scanned per query (default: 5 x the square root "
                                              "of the lists, shown by melos index info); more is slower and closer "
                                              "to exact")
    p.add_argument("--start", type=float, help="query with the windows from this time on (seconds)")
    p.add_argument("--end", type=float, help="query with the windows up to this time (seconds)")
    p.add_argument("--model", help="encoder for audio queries (default: the one the index records)")
    p.add_argument("--device", default="cpu", help="where to embed an audio query (default cpu)")
    p.add_argument("--json", dest="as_json", action="store_true", help="one JSON object per result instead of a table")


def run(index: str, query: str, k: int, where: str | None, exact: bool, probes: int | None, start: float | None,
        end: float | None, model: str | None, device: str, as_json: bool) -> int:
    from ..search import VectorIndex, query_vector

    vector_index = VectorIndex.open(index)
    vector = query_vector(query, vector_index.info, model, device, start, end)
    hits = vector_index.search(vector, k, where, exact, probes)
    if hits and not as_json:
        print(f"rank  score   distance{'  window (s)' if hits[0].start is not None else ''}  path")
    for rank, hit in enumerate(hits, start=1):
        if as_json:
            print(json.dumps({"rank": rank, "score": hit.score, "distance": hit.distance, "path": hit.path,
                              "start": hit.start, "end": hit.end, "window": hit.window, **hit.columns}, default=str))
        else:
            at = "" if hit.start is None else f"  {hit.start:7.1f}-{hit.end:.1f}"
            columns = "".join(f"  {name}={value}" for name, value in hit.columns.items()
                              if not isinstance(value, (list, dict)))
            print(f"{rank:4d}  {hit.score:.4f}  {hit.distance:.4f}{at}  {hit.path}{columns}")
    if not hits:
        print("no results" + (f": no row passes --where {where!r}" if where else ""))
    return 0
