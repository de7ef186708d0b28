import pytest
import torch
from safetensors.torch import load_file, save_file

from melos.merging.tensor_io import LazyCheckpoint, StreamingWriter
from melos.models.hf_layout import CheckpointError


def test_streaming_writer_output_reads_back_with_the_safetensors_library(tmp_path):
    tensors = {"b": torch.randn(3, 5), "a": torch.arange(7, dtype=torch.int64), "s": torch.tensor(2.5),
               "h": torch.randn(4).to(torch.bfloat16), "e": torch.zeros(0, 3)}
    writer = StreamingWriter(tmp_path / "x.safetensors", {k: (tuple(v.shape), v.dtype) for k, v in tensors.items()},
                             {"format": "pt"})
    for k, v in tensors.items():
        writer.write(k, v)
    writer.close()
    back = load_file(tmp_path / "x.safetensors")
    assert set(back) == set(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k


def test_streaming_writer_refuses_wrong_order_shape_and_missing(tmp_path):
    specs = {"a": ((2,), torch.float32), "b": ((2,), torch.float32)}
    writer = StreamingWriter(tmp_path / "x.safetensors", specs)
    with pytest.raises(RuntimeError, match="expected 'a'"):
        writer.write("b", torch.zeros(2))
    writer = StreamingWriter(tmp_path / "y.safetensors", specs)
    with pytest.raises(RuntimeError, match="header says"):
        writer.write("a", torch.zeros(3))
    writer = StreamingWriter(tmp_path / "z.safetensors", specs)
    writer.write("a", torch.zeros(2))
    with pytest.raises(RuntimeError, match="never written"):
        writer.close()


def test_lazy_checkpoint_reads_safetensors_and_bin_under_canonical_names(tmp_path):
    state = {"module.conv.parametrizations.weight.original0": torch.randn(1, 1, 3), "module.fc.weight": torch.randn(2, 2)}
    save_file(state, tmp_path / "w.safetensors")
    torch.save(state, tmp_path / "w.bin")
    for file in ("w.safetensors", "w.bin"):
        ckpt = LazyCheckpoint(tmp_path / file)
        assert ckpt.shapes == {"conv.weight_g": (1, 1, 3), "fc.weight": (2, 2)}
        assert ckpt.dtypes["fc.weight"] == torch.float32
        assert torch.equal(ckpt.read("fc.weight"), state["module.fc.weight"])


def test_lazy_checkpoint_refuses_pickled_objects_and_garbage(tmp_path):
    torch.save({"w": torch.zeros(1), "obj": Exception("code")}, tmp_path / "evil.bin")
    with pytest.raises(CheckpointError, match="evil.bin"):
        LazyCheckpoint(tmp_path / "evil.bin")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        LazyCheckpoint(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        LazyCheckpoint(tmp_path / "nothing-here")
