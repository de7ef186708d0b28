"""melos index / melos search: results against a brute-force numpy cosine ranking, filters,
window times, both embed formats, appends, the ANN path and the one-line errors."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch

from melos.cli import main
from melos.embedding.store import Embeddings
from melos.search import VectorIndex, engine, query_vector, vectors

H = 16
LAYERS = [0, 2]
META = {"model": "mert-tiny", "sample_rate": "24000", "frame_rate": "75", "window": "1.0", "hop": "1.0",
        "pool": "mean"}
CULTURES = ["makam", "raga", "greek"]


def _files(n_files=12, seed=0):
    """Random embeddings: path -> [n_layers, n_windows, H] with 1-4 windows, plus manifest fields."""
    rng = np.random.default_rng(seed)
    return {f"music/t{i:02d}.wav": (rng.standard_normal((len(LAYERS), 1 + i % 4, H)).astype(np.float32),
                                    {"culture": CULTURES[i % 3], "instrument": ["ney", "sitar"][i % 2], "bpm": 60 + i})
            for i in range(n_files)}


def _write_safetensors(folder, files, root):
    """What melos embed writes: <name>.safetensors per file and index.jsonl (absolute paths)."""
    rows = []
    for name, (x, _) in files.items():
        n = x.shape[1]
        Embeddings(torch.from_numpy(x), torch.arange(n, dtype=torch.float64) * 1.0, torch.full((n,), -1),
                   torch.tensor(LAYERS), {**META, "source": str(root / name)}).save(folder / f"{name}.safetensors")
        rows.append({"path": str(root / name), "status": "ok", "output": f"{name}.safetensors", "duration": float(n),
                     "n_windows": n, "error": None})
    (folder / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _write_parquet(folder, files, root, stale=None):
    """The parquet layout of melos embed --format parquet: parts of several files' rows, index.jsonl
    naming each file's part. `stale` files also get a part that index.jsonl does not name (left by
    a killed worker), holding other vectors that must never be read."""
    parts = {f"part-{i}": dict(list(files.items())[i::2]) for i in range(2)}
    if stale:
        parts["part-stale"] = {name: (x + 1.0, f) for name, (x, f) in stale.items()}
    metadata = {k.encode(): v.encode() for k, v in {**META, "layers": "0,2"}.items()}
    (folder / "parquet").mkdir(parents=True)
    index = []
    for part, members in parts.items():
        chunk = [(str(root / name), w, float(w), x[:, w])
                 for name, (x, _) in members.items() for w in range(x.shape[1])]
        if part != "part-stale":
            index += [{"path": str(root / name), "status": "ok", "output": f"parquet/{part}.parquet",
                       "duration": float(x.shape[1]), "n_windows": x.shape[1], "error": None}
                      for name, (x, _) in members.items()]
        columns = {"path": pa.array([r[0] for r in chunk]), "window": pa.array([r[1] for r in chunk], pa.int32()),
                   "start": pa.array([r[2] for r in chunk], pa.float64())}
        for i, layer in enumerate(LAYERS):
            flat = np.stack([r[3][i] for r in chunk]).reshape(-1)
            columns[f"layer_{layer}"] = pa.FixedSizeListArray.from_arrays(pa.array(flat), H)
        table = pa.table(columns).replace_schema_metadata(metadata)
        pq.write_table(table, folder / "parquet" / f"{part}.parquet")
    (folder / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in index))
    return folder


def _write_manifest(path, files, prefix="music/"):
    """Relative paths against the manifest's folder, as melos embed --input takes them."""
    path.write_text("".join(json.dumps({"path": name.removeprefix(prefix), **fields, "meta": {"nested": 1}}) + "\n"
                            for name, (_, fields) in files.items()))
    return path


@pytest.fixture
def corpus(tmp_path):
    files = _files()
    root = tmp_path / "audio"
    emb = _write_safetensors(tmp_path / "emb", files, root)
    (root / "music").mkdir(parents=True)
    manifest = _write_manifest(root / "music" / "files.jsonl", files)
    return files, root, emb, manifest


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _reference(files, root, layer, level, query, keep=lambda fields: True):
    """Brute force: (path, start, score) rows ranked by numpy cosine similarity."""
    rows = []
    for name, (x, fields) in files.items():
        if not keep(fields):
            continue
        v = x[LAYERS.index(layer)].astype(np.float64)
        if level == "track":
            rows.append((str(root / name), None, v.mean(0)))
        else:
            rows += [(str(root / name), float(w), v[w]) for w in range(len(v))]
    scores = _unit(np.stack([r[2] for r in rows])) @ _unit(query.astype(np.float64))
    order = np.argsort(-scores, kind="stable")
    return [(rows[i][0], rows[i][1]) for i in order], scores[order]


def _cli_search(capsys, index, query, *args):
    capsys.readouterr()
    assert main(["search", str(index), "--query", str(query), "--json", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("level", ["track", "window"])
def test_cli_build_and_search_equal_brute_force_cosine(tmp_path, capsys, corpus, level):
    files, root, emb, manifest = corpus
    assert main(["index", "build", str(emb), "--layer", "2", "--level", level, "--out", str(tmp_path / "idx"),
                 "--manifest", str(manifest)]) == 0
    query = np.random.default_rng(1).standard_normal(H).astype(np.float32)
    np.save(tmp_path / "q.npy", query)
    hits = _cli_search(capsys, tmp_path / "idx", tmp_path / "q.npy", "-k", "100")
    expected, scores = _reference(files, root, 2, level, query)
    assert [(h["path"], h["start"]) for h in hits] == expected
    np.testing.assert_allclose([h["score"] for h in hits], scores, atol=1e-5)
    assert {h["culture"] for h in hits} == set(CULTURES)  # manifest columns joined on the path
    assert all(h["culture"] == files["music/" + h["path"].rsplit("/", 1)[1]][1]["culture"] for h in hits)


def test_where_filters_before_ranking(tmp_path, capsys, corpus):
    files, root, emb, manifest = corpus
    VectorIndex.create(tmp_path / "idx", emb, 0, "window", manifest)
    query = np.random.default_rng(2).standard_normal(H).astype(np.float32)
    np.save(tmp_path / "q.npy", query)
    hits = _cli_search(capsys, tmp_path / "idx", tmp_path / "q.npy", "-k", "5", "--where",
                       "culture = 'makam' AND bpm > 62")
    expected, scores = _reference(files, root, 0, "window", query, lambda f: f["culture"] == "makam" and f["bpm"] > 62)
    assert [(h["path"], h["start"]) for h in hits] == expected[:5]
    np.testing.assert_allclose([h["score"] for h in hits], scores[:5], atol=1e-5)
    hits = _cli_search(capsys, tmp_path / "idx", tmp_path / "q.npy", "--where", "instrument = 'ney'")
    assert hits and all(h["instrument"] == "ney" for h in hits)


def test_window_level_returns_the_window_and_its_start(tmp_path, capsys, corpus):
    files, root, emb, _ = corpus
    VectorIndex.create(tmp_path / "idx", emb, 2, "window")
    x = files["music/t03.wav"][0][LAYERS.index(2)]  # 4 windows
    np.save(tmp_path / "q.npy", x[2])
    top = _cli_search(capsys, tmp_path / "idx", tmp_path / "q.npy", "-k", "1")[0]
    assert (top["path"], top["start"], top["window"]) == (str(root / "music/t03.wav"), 2.0, 2)
    assert top["score"] == pytest.approx(1.0, abs=1e-5)


def test_track_vector_is_the_normalised_mean_of_its_windows(tmp_path, corpus):
    files, root, emb, _ = corpus
    index, _ = VectorIndex.create(tmp_path / "idx", emb, 2, "track")
    table = index.table.to_arrow()
    x = files["music/t07.wav"][0][LAYERS.index(2)]
    row = table.filter(pa.compute.equal(table["path"], str(root / "music/t07.wav")))
    assert row["n_windows"].to_pylist() == [x.shape[0]] and "vector" not in table.schema.names  # stored once
    np.testing.assert_allclose(index.vectors[row["row"][0].as_py()], _unit(x.astype(np.float64).mean(0)), atol=1e-6)


def test_parquet_input_gives_the_same_index(tmp_path, corpus, monkeypatch):
    monkeypatch.setattr(vectors, "PARQUET_BATCH_ROWS", 5)  # a file's windows straddle read batches
    files, root, emb, manifest = corpus
    parquet = _write_parquet(tmp_path / "emb-parquet", files, root, stale=dict(list(files.items())[:3]))
    for level in ("track", "window"):
        a, _ = VectorIndex.create(tmp_path / f"a-{level}", emb, 2, level, manifest)
        b, _ = VectorIndex.create(tmp_path / f"b-{level}", parquet, 2, level, manifest)
        keys = [("path", "ascending")] + ([("window", "ascending")] if level == "window" else [])
        ta, tb = a.table.to_arrow().sort_by(keys), b.table.to_arrow().sort_by(keys)
        assert ta.schema.names == tb.schema.names
        for name in ta.schema.names:
            if name == "row":  # insertion order: the parquet parts interleave files
                np.testing.assert_allclose(a.vectors[ta[name].to_numpy()], b.vectors[tb[name].to_numpy()], atol=1e-6)
            else:
                assert ta[name].to_pylist() == tb[name].to_pylist(), name
        assert a.info.dim == b.info.dim == H and b.info.model == "mert-tiny"


def test_add_appends_only_new_files(tmp_path, capsys, corpus):
    files, root, emb, manifest = corpus
    first = dict(list(files.items())[:5])
    _write_safetensors(tmp_path / "emb-first", first, root)
    assert main(["index", "build", str(tmp_path / "emb-first"), "--layer", "0", "--out", str(tmp_path / "idx"),
                 "--manifest", str(manifest)]) == 0
    assert main(["index", "add", str(tmp_path / "idx"), str(emb), "--manifest", str(manifest)]) == 0
    assert "indexed 7 track rows from 7 files (5 already indexed)" in capsys.readouterr().out
    index = VectorIndex.open(tmp_path / "idx")
    assert len(index) == len(files)
    query = np.random.default_rng(3).standard_normal(H)
    expected, _ = _reference(files, root, 0, "track", query)
    assert [(h.path, h.start) for h in index.search(query, k=len(files))] == expected
    assert sorted(h.columns["culture"] for h in index.search(query, k=len(files))) == sorted(
        f["culture"] for _, f in files.values())


def test_manifest_joins_on_the_output_name_from_another_folder(tmp_path, corpus):
    files, root, _, _ = corpus
    emb = _write_safetensors(tmp_path / "emb-moved", files, tmp_path / "elsewhere")  # paths not under the manifest
    manifest = _write_manifest(root / "files.jsonl", files, prefix="")  # names as embed gives them: music/t00.wav
    index, report = VectorIndex.create(tmp_path / "idx", emb, 0, "track", manifest)
    assert report.n_unmatched_files == 0
    assert report.dropped_columns == ["meta"]
    hits = index.search(np.ones(H), k=len(files), where="culture = 'raga'")
    assert len(hits) == 4 and all(h.columns["culture"] == "raga" for h in hits)


def _clustered(n, dim=32, seed=4):
    """Unit vectors in 20 clusters with noise: neighbours are near but not trivially separated."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((20, dim))[rng.integers(0, 20, n)] + 0.6 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _write_rows(folder, x, root, start=0, part=0):
    """Rows `x` as one melos embed parquet part: file v<i>.wav under `root`, one 1 s window each."""
    (folder / "parquet").mkdir(parents=True, exist_ok=True)
    meta = {k.encode(): v.encode() for k, v in {**META, "layers": "0"}.items()}
    table = pa.table({"path": pa.array([str(root / f"v{start + i:05d}.wav") for i in range(len(x))]),
                      "window": pa.array(np.zeros(len(x), np.int32)), "start": pa.array(np.zeros(len(x))),
                      "layer_0": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])})
    pq.write_table(table.replace_schema_metadata(meta), folder / "parquet" / f"part-{part}.parquet")
    return folder


def _exact_top(x, q, k, keep=None):
    scores = x.astype(np.float64) @ (q / np.linalg.norm(q))
    if keep is not None:
        scores = np.where(keep, scores, -np.inf)
    return set(np.argsort(-scores, kind="stable")[:k].tolist())


def _ids(hits):
    return [int(h.path.rsplit("/", 1)[1][1:6]) for h in hits]


def test_inverted_file_recall_against_exact_search(tmp_path):
    """The default probes and re-ranking find >= 0.95 of the exact top-10; one list without
    re-ranking, codes of the wrong metric or a broken id mapping would fall far below."""
    x = _clustered(3000)
    index, _ = VectorIndex.create(tmp_path / "idx", _write_rows(tmp_path / "emb", x, tmp_path), 0, "window", ann="ivf")
    assert index.info.ann_built["index_type"] == "IVF64,PQ16x4fs" and (tmp_path / "idx" / "ivfpq.faiss").is_file()
    index = VectorIndex.open(tmp_path / "idx")  # loaded from disk, not rebuilt
    queries = _clustered(50, seed=5)
    found = [len(set(_ids(index.search(q, 10))) & _exact_top(x, q, 10)) for q in queries]
    assert np.mean(found) / 10 >= 0.95
    weak = [len(set(_ids(index.search(q, 10, probes=1, refine=1))) & _exact_top(x, q, 10)) for q in queries]
    assert np.mean(weak) / 10 < 0.9  # the measure sees a starved search
    hits = index.search(queries[0], 10)
    np.testing.assert_allclose([h.score for h in hits], np.sort(x[_ids(hits)] @ queries[0])[::-1], atol=1e-5)
    assert [h.distance for h in hits] == pytest.approx([1 - h.score for h in hits])
    exact = [len(set(_ids(index.search(q, 10, exact=True))) & _exact_top(x, q, 10)) for q in queries]
    assert np.mean(exact) == 10


@pytest.mark.parametrize("exact", [True, False])
def test_a_batch_search_equals_one_search_per_query(tmp_path, exact, monkeypatch):
    monkeypatch.setattr(engine, "SCORE_BLOCK", 3000 * 7)  # exact batches of 7 queries: blocks straddle the batch
    x = _clustered(3000)
    index, _ = VectorIndex.create(tmp_path / "idx", _write_rows(tmp_path / "emb", x, tmp_path), 0, "window", ann="ivf")
    queries = _clustered(20, seed=9) * 3.0  # not unit: each is normalised
    for where in (None, "path LIKE '%v00%'"):  # a third of the rows pass
        batch = index.search_many(queries, 10, where=where, exact=exact)
        single = [index.search(q, 10, where=where, exact=exact) for q in queries]
        assert [[(h.path, round(h.score, 5)) for h in hits] for hits in batch] == \
            [[(h.path, round(h.score, 5)) for h in hits] for hits in single]
        assert all(len(hits) == 10 for hits in batch)


def test_build_on_a_grown_folder_adds_only_new_rows_and_equals_a_full_rebuild(tmp_path, capsys):
    x = _clustered(1200)
    emb = _write_rows(tmp_path / "emb", x[:1000], tmp_path)
    assert main(["index", "build", str(emb), "--out", str(tmp_path / "grown"), "--level", "window",
                 "--ann", "ivf"]) == 0
    _write_rows(emb, x[1000:], tmp_path, start=1000, part=1)
    capsys.readouterr()
    assert main(["index", "build", str(emb), "--out", str(tmp_path / "grown"), "--level", "window",
                 "--ann", "ivf"]) == 0
    out = capsys.readouterr().out
    assert "layer 0 (the default" in out and "indexed 200 window rows from 200 files (1000 already indexed)" in out
    grown = VectorIndex.open(tmp_path / "grown")
    full, _ = VectorIndex.create(tmp_path / "full", emb, 0, "window", ann="ivf")
    assert len(grown) == len(full) == 1200 and grown.info.ann_built["rows"] == 1200
    assert grown.info.ann_built["trained_rows"] == 1000  # encoded into the trained lists, not retrained
    assert (tmp_path / "grown" / "vectors.f32").read_bytes() == (tmp_path / "full" / "vectors.f32").read_bytes()
    ta, tb = (i.table.to_arrow().sort_by("row") for i in (grown, full))
    assert ta.equals(tb)
    for q in _clustered(20, seed=6):
        assert _ids(grown.search(q, 10, exact=True)) == _ids(full.search(q, 10, exact=True))
        every = grown.search(q, 10, probes=10**6, refine=120)  # every list, every row re-ranked
        assert set(_ids(every)) == _exact_top(x, q, 10)  # the inverted file holds the new rows, ids right


def test_an_index_grown_fourfold_is_trained_again(tmp_path):
    x = _clustered(2800)
    emb = _write_rows(tmp_path / "emb", x[:600], tmp_path)
    index, _ = VectorIndex.create(tmp_path / "idx", emb, 0, "window", ann="ivf")
    assert index.info.ann_built is None and index.ann is None  # too few rows to train codebooks: exact
    _write_rows(emb, x[600:700], tmp_path, start=600, part=1)
    index, _ = VectorIndex.build(tmp_path / "idx", emb, 0, "window", ann="ivf")
    assert index.info.ann_built["index_type"] == "IVF16,PQ16x4fs" and index.info.ann_built["trained_rows"] == 700
    _write_rows(emb, x[700:], tmp_path, start=700, part=2)
    index, report = VectorIndex.build(tmp_path / "idx", emb, 0, "window", ann="ivf")
    assert report.incremental and index.info.ann_built["trained_rows"] == 2800
    assert index.info.ann_built["index_type"] == "IVF64,PQ16x4fs"
    again = VectorIndex.open(tmp_path / "idx")
    assert again.ann.ntotal == 2800 and again.info.ann_built == index.info.ann_built


@pytest.mark.parametrize("share", [0.05, 0.5])  # below FILTER_ANN_FRACTION: exact over the rows; above: masked graph
def test_filtered_search_returns_k_rows_that_pass(tmp_path, share):
    x = _clustered(3000)
    root = tmp_path / "audio"
    emb = _write_rows(tmp_path / "emb", x, root)
    rng = np.random.default_rng(7)
    keep = rng.random(len(x)) < share
    (tmp_path / "m.jsonl").write_text("".join(json.dumps({"path": str(root / f"v{i:05d}.wav"),
                                                          "split": "train" if keep[i] else "test"}) + "\n"
                                              for i in range(len(x))))
    index, _ = VectorIndex.create(tmp_path / "idx", emb, 0, "window", tmp_path / "m.jsonl", ann="ivf")
    found = []
    for q in _clustered(30, seed=8):
        hits = index.search(q, 10, where="split = 'train'")
        assert len(hits) == 10 and all(h.columns["split"] == "train" for h in hits)
        found.append(len(set(_ids(hits)) & _exact_top(x, q, 10, keep)))
    assert np.mean(found) / 10 >= 0.95
    assert len(index.search(x[0], 5000, where="split = 'train'")) == keep.sum()  # k beyond the rows that pass


def test_missing_or_corrupt_index_files_give_one_line_naming_them(tmp_path, capsys):
    x = _clustered(700)
    emb = _write_rows(tmp_path / "emb", x, tmp_path)
    np.save(tmp_path / "q.npy", x[0])
    search = ["search", str(tmp_path / "idx"), "--query", str(tmp_path / "q.npy")]

    def fresh():
        VectorIndex.create(tmp_path / "idx", emb, 0, "window", ann="ivf")
        return tmp_path / "idx"

    (fresh() / "vectors.f32").unlink()
    assert "vectors.f32: missing" in _error(capsys, search)
    with open(fresh() / "vectors.f32", "r+b") as f:
        f.truncate(100)
    assert "vectors.f32: holds 0 vectors, the index 700" in _error(capsys, search)
    (fresh() / "ivfpq.faiss").write_bytes(b"not an index")
    assert "ivfpq.faiss: unreadable" in _error(capsys, search)
    (fresh() / "ivfpq.faiss").unlink()
    assert "ivfpq.faiss: missing" in _error(capsys, search)
    import shutil
    shutil.rmtree(fresh() / "vectors.lance")
    assert "vectors.lance: unreadable LanceDB table" in _error(capsys, search)
    (fresh() / "melos-index.json").write_text("{")
    assert "melos-index.json: unreadable" in _error(capsys, search)
    info = json.loads((fresh() / "melos-index.json").read_text())
    (tmp_path / "idx" / "melos-index.json").write_text(json.dumps({**info, "version": 1}))
    assert "index format 1" in _error(capsys, search)


def test_query_by_time_range_and_output_shows_distance_and_window_times(tmp_path, capsys, corpus):
    files, root, emb, _ = corpus
    VectorIndex.create(tmp_path / "idx", emb, 2, "window")
    x = files["music/t03.wav"][0][LAYERS.index(2)]  # 4 windows of 1 s, starting at 0, 1, 2, 3
    query = emb / "music/t03.wav.safetensors"
    top = _cli_search(capsys, tmp_path / "idx", query, "-k", "1", "--start", "2", "--end", "3")[0]
    assert (top["path"], top["start"], top["end"]) == (str(root / "music/t03.wav"), 2.0, 3.0)
    assert top["distance"] == pytest.approx(0.0, abs=1e-5)
    two = _cli_search(capsys, tmp_path / "idx", query, "-k", "1", "--start", "1", "--end", "3")[0]
    expected, _ = _reference(files, root, 2, "window", x[1:3].mean(0))
    assert (two["path"], two["start"]) == expected[0]
    capsys.readouterr()
    assert main(["search", str(tmp_path / "idx"), "--query", str(query), "-k", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["rank", "score", "distance", "window", "(s)", "path"]
    rank, score, distance, span, path = out[1].split()
    start, end = map(float, span.split("-"))
    assert rank == "1" and float(score) + float(distance) == pytest.approx(1.0, abs=2e-4) and end == start + 1.0
    assert "no window has its middle in 10-20 s" in _error(
        capsys, ["search", str(tmp_path / "idx"), "--query", str(query), "--start", "10", "--end", "20"])


def test_default_layer_is_the_lower_middle_embedded_one(tmp_path, capsys, corpus):
    _, _, emb, _ = corpus
    capsys.readouterr()
    assert main(["index", "build", str(emb), "--out", str(tmp_path / "idx")]) == 0
    assert capsys.readouterr().out.startswith("layer 0 (the default: the middle embedded layer)")
    assert VectorIndex.open(tmp_path / "idx").info.layer == 0
    from melos.search import default_layer
    assert [default_layer(v) for v in ([0, 2], list(range(13)), [6, 12], [3])] == [0, 6, 6, 3]


def test_audio_query_is_embedded_with_the_index_model(tmp_path, capsys):
    """End to end: a saved tiny encoder, melos embed, index build, search with an audio file."""
    from melos.models import load_encoder

    torch.manual_seed(0)
    load_encoder("mert-tiny").save_pretrained(tmp_path / "model")
    t = np.arange(36000) / 24000
    for i, freq in enumerate((110, 440, 1760)):
        sf.write(tmp_path / f"tone{i}.wav", (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 24000)
    assert main(["embed", "--model", str(tmp_path / "model"), "--input", str(tmp_path), "--out", str(tmp_path / "emb"),
                 "--window", "1", "--layers", "1,2", "--no-progress"]) == 0
    assert main(["index", "build", str(tmp_path / "emb"), "--layer", "2", "--out", str(tmp_path / "idx")]) == 0
    hits = _cli_search(capsys, tmp_path / "idx", tmp_path / "tone1.wav", "-k", "3")
    assert hits[0]["path"].endswith("tone1.wav") and hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    info = VectorIndex.open(tmp_path / "idx").info
    via_file = query_vector(tmp_path / "emb" / "tone1.wav.safetensors", info)
    via_audio = query_vector(tmp_path / "tone1.wav", info)
    np.testing.assert_allclose(via_audio, via_file, rtol=1e-4, atol=1e-5)
    (tmp_path / "model" / "config.json").unlink()  # the index's model is gone
    assert main(["search", str(tmp_path / "idx"), "--query", str(tmp_path / "tone1.wav")]) == 2
    assert "query model" in capsys.readouterr().err


def _error(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_errors_are_one_line(tmp_path, capsys, corpus):
    files, root, emb, manifest = corpus
    (tmp_path / "empty").mkdir()
    assert "no embeddings" in _error(capsys, ["index", "build", str(tmp_path / "empty"), "--layer", "0", "--out",
                                              str(tmp_path / "x")])
    assert "layer 5 was not embedded (layers here: [0, 2])" in _error(
        capsys, ["index", "build", str(emb), "--layer", "5", "--out", str(tmp_path / "x")])
    assert "not a melos index" in _error(capsys, ["search", str(tmp_path / "nothing"), "--query", "q.npy"])
    assert not (tmp_path / "x").exists()
    assert "is not a melos index; refusing to replace it" in _error(
        capsys, ["index", "build", str(emb), "--layer", "0", "--out", str(emb)])
    assert (emb / "index.jsonl").is_file()
    VectorIndex.create(tmp_path / "idx", emb, 0)
    np.save(tmp_path / "q.npy", np.ones(H + 1))
    assert "query has dimension 17, the index 16" in _error(
        capsys, ["search", str(tmp_path / "idx"), "--query", str(tmp_path / "q.npy")])
    sf.write(tmp_path / "q.wav", np.zeros(24000, np.float32), 24000)
    assert "'mert-tiny' is a preset with random weights" in _error(capsys, ["search", str(tmp_path / "idx"), "--query", str(tmp_path / "q.wav")])
    assert "query model 'nowhere/model' cannot be loaded" in _error(
        capsys, ["search", str(tmp_path / "idx"), "--query", str(tmp_path / "q.wav"), "--model", "nowhere/model"])
    np.save(tmp_path / "q.npy", np.ones(H))
    assert "nope" in _error(capsys, ["search", str(tmp_path / "idx"), "--query", str(tmp_path / "q.npy"),
                                     "--where", "nope = 1"])
    other = _write_manifest(tmp_path / "other.jsonl", {"zzz.wav": (None, {"culture": "x"})})
    assert "no row matches" in _error(capsys, ["index", "build", str(emb), "--layer", "0", "--out",
                                               str(tmp_path / "y"), "--manifest", str(other)])


def test_frame_level_output_is_pooled_per_window(tmp_path):
    """melos embed --pool none stores frames [n_layers, sum T, H]; each window is their mean."""
    rng = np.random.default_rng(5)
    frames = rng.standard_normal((len(LAYERS), 3 + 5, H)).astype(np.float32)  # windows of 3 and 5 frames
    folder = tmp_path / "emb"
    Embeddings(torch.from_numpy(frames), torch.tensor([0.0, 1.0], dtype=torch.float64), torch.tensor([3, 5]),
               torch.tensor(LAYERS), {**META, "pool": "none"}).save(folder / "a.wav.safetensors")
    index, _ = VectorIndex.create(tmp_path / "idx", folder, 2, "window")
    got = index.vectors[index.table.to_arrow().sort_by("window")["row"].to_numpy()]
    x = frames[1].astype(np.float64)
    np.testing.assert_allclose(got, _unit(np.stack([x[:3].mean(0), x[3:].mean(0)])), atol=1e-6)
