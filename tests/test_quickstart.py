"""The built-in quickstart runs end to end and leaves what it announces."""

import pytest

from melos.cli import main
from melos.embedding import read_index


def test_quickstart_runs(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path / "qs")]) == 0
    out = capsys.readouterr().out
    assert "embedded 3 files" in out and "0 failed" in out
    rows = read_index(tmp_path / "qs" / "embeddings" / "index.jsonl")
    assert len(rows) == 3 and all(r.status == "ok" and r.n_windows == 2 for r in rows.values())
    assert (tmp_path / "qs" / "model" / "config.json").is_file()


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert "embed" in help_text and "quickstart" in help_text
