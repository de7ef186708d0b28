"""Atomic writes: right content, existing targets replaced, failures leave the old version and no
temporary file or folder behind."""

import threading

import pytest
import torch
from safetensors.torch import load_file, save_file

from melos.utils.atomic import atomic_dir, atomic_file, write_text


def test_write_text_creates_and_replaces(tmp_path):
    path = tmp_path / "sub" / "a.json"
    assert write_text(path, "one") == path
    write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_tensor_file_written_and_replaced(tmp_path):
    path = tmp_path / "t.safetensors"
    for value in (1.0, 2.0):
        with atomic_file(path) as tmp:
            assert tmp.parent == path.parent and tmp.name.startswith(".") and tmp != path
            save_file({"x": torch.full((3,), value)}, tmp, metadata={"v": str(value)})
    assert torch.equal(load_file(path)["x"], torch.full((3,), 2.0))
    assert [p.name for p in tmp_path.iterdir()] == ["t.safetensors"]


def test_failed_file_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "t.safetensors"
    save_file({"x": torch.zeros(2)}, path)
    with pytest.raises(ValueError):
        with atomic_file(path) as tmp:
            save_file({"x": "not a tensor"}, tmp)
    with pytest.raises(RuntimeError, match="stop"):
        with atomic_file(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("stop")
    assert torch.equal(load_file(path)["x"], torch.zeros(2))
    assert [p.name for p in tmp_path.iterdir()] == ["t.safetensors"]


def test_concurrent_writers_get_distinct_temporary_names(tmp_path):
    path, names, barrier = tmp_path / "same.txt", [], threading.Barrier(4)

    def write(i):
        with atomic_file(path) as tmp:
            names.append(tmp)
            tmp.write_text(str(i))
            barrier.wait()  # every writer holds its temporary file at once

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(names)) == 4 and path not in names
    assert path.read_text() in {"0", "1", "2", "3"}
    assert [p.name for p in tmp_path.iterdir()] == ["same.txt"]


def test_atomic_dir_creates_and_replaces(tmp_path):
    path = tmp_path / "model"
    for text in ("old", "new"):
        with atomic_dir(path) as folder:
            assert folder.is_dir() and not any(folder.iterdir()) and folder.name.startswith(".")
            assert not (path / "weights").exists() or (path / "weights").read_text() == "old"
            (folder / "weights").write_text(text)
    assert [p.name for p in path.iterdir()] == ["weights"] and (path / "weights").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


@pytest.mark.parametrize("existing", [False, True])
def test_failure_inside_atomic_dir_leaves_the_old_folder(tmp_path, existing):
    path = tmp_path / "model"
    if existing:
        path.mkdir()
        (path / "weights").write_text("old")
    with pytest.raises(RuntimeError, match="stop"):
        with atomic_dir(path) as folder:
            (folder / "weights").write_text("half")
            raise RuntimeError("stop")
    assert [p.name for p in tmp_path.iterdir()] == (["model"] if existing else [])
    if existing:
        assert (path / "weights").read_text() == "old"
