"""melos embed --format parquet: the fixed schema, values equal to the safetensors output, parts
written whole, stray parts removed, read_parquet."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from melos.cli import main
from melos.embedding import Embeddings, embed, read_index, read_parquet


def sorted_rows(table: pa.Table) -> pa.Table:
    return table.sort_by([("path", "ascending"), ("window", "ascending")])


def test_parquet_rows_hold_the_safetensors_values(tmp_path, music, encoder):
    embed(encoder, music, tmp_path / "st", window=1.0, hop=0.75, layers="0,-1", progress=False)
    summary = embed(encoder, music, tmp_path / "pq", window=1.0, hop=0.75, layers="0,-1", format="parquet",
                    progress=False)
    assert summary.n_done == 4 and sorted(summary.failed) == [str(music / "empty.wav"), str(music / "notes.mp3")]
    table = read_parquet(tmp_path / "pq")
    assert table.schema.field("path").type == pa.string()
    assert table.schema.field("window").type == pa.int32()
    assert table.schema.field("start").type == pa.float64()
    assert [f.name for f in table.schema][3:] == ["layer_0", "layer_2"]
    assert table.schema.field("layer_2").type == pa.list_(pa.float32(), 64)

    rows = read_index(tmp_path / "pq" / "index.jsonl")
    assert rows[str(music / "empty.wav")].status == "error"
    for name in ["a.wav", "sub/b.flac", "c.ogg"]:
        want = Embeddings.load(tmp_path / "st" / f"{name}.safetensors")
        mine = table.filter(pa.compute.equal(table["path"], str(music / name)))
        assert mine["window"].to_pylist() == list(range(want.window_starts.numel()))
        assert mine["start"].to_pylist() == want.window_starts.tolist()
        for row, layer in enumerate([0, 2]):
            got = np.stack(mine[f"layer_{layer}"].to_numpy(zero_copy_only=False))
            np.testing.assert_array_equal(got, want.embeddings[row].numpy())
        assert rows[str(music / name)].n_windows == mine.num_rows
        assert (tmp_path / "pq" / rows[str(music / name)].output).is_file()

    metadata = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    per_file = {"source", "duration"}
    assert metadata == {**{k: v for k, v in want.metadata.items() if k not in per_file}, "layers": "0,2"}
    # the folder reads directly, as DuckDB or pandas would, with the same rows
    direct = pq.read_table(tmp_path / "pq" / "parquet")
    assert sorted_rows(direct).equals(sorted_rows(table))


def test_stray_parts_are_removed_and_a_fresh_run_replaces_parts(tmp_path, music, encoder):
    out = tmp_path / "pq"
    embed(encoder, music, out, window=1.0, format="parquet", progress=False)
    [part] = (out / "parquet").glob("part-*.parquet")
    before = sorted_rows(read_parquet(out))
    stray = out / "parquet" / "part-from-a-killed-worker.parquet"
    stray.write_bytes(part.read_bytes())  # the same rows again, in a part no index row names
    assert sorted_rows(read_parquet(out)).equals(before)  # read_parquet ignores it ...
    summary = embed(encoder, music, out, window=1.0, format="parquet", skip_existing=True, progress=False)
    assert summary.n_skipped == 4 and summary.n_done == 0
    assert not stray.exists() and part.exists()  # ... and the next run removes it
    embed(encoder, music, out, window=1.0, format="parquet", progress=False)
    parts = list((out / "parquet").glob("part-*.parquet"))
    assert len(parts) == 1 and parts != [part]
    assert sorted_rows(pq.read_table(out / "parquet")).equals(before)


def test_parquet_needs_pooled_output_and_a_parquet_run(tmp_path, music, encoder, capsys):
    with pytest.raises(ValueError, match="--pool mean"):
        embed(encoder, music, tmp_path / "x", pool="none", format="parquet", progress=False)
    embed(encoder, music / "a.wav", tmp_path / "st", window=1.0, progress=False)
    with pytest.raises(FileNotFoundError, match="names no parquet part"):
        read_parquet(tmp_path / "st")
    with pytest.raises(FileNotFoundError, match="index.jsonl"):
        read_parquet(tmp_path / "nothing")

    encoder.save_pretrained(tmp_path / "model")
    args = ["embed", "--model", str(tmp_path / "model"), "--input", str(music / "a.wav"), "--window", "1",
            "--no-progress", "--format", "parquet"]
    assert main([*args, "--out", str(tmp_path / "cli")]) == 0
    assert read_parquet(tmp_path / "cli").num_rows == 2  # 2.5 s: [0, 1), [1, 2); the 0.5 s tail is dropped
    assert main([*args, "--out", str(tmp_path / "cli2"), "--pool", "none"]) == 2
    assert "--pool mean" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "cli3"), "--workers", "2"]) == 2
    assert "need --engine ray" in capsys.readouterr().err
