"""Checkpoints read one tensor at a time, and a safetensors file written one tensor at a time.

Merging N models must not hold N models in memory. `LazyCheckpoint` lists names, shapes and
dtypes from the file header and reads a tensor only when asked: safetensors through the official
library (reopened per read, so no mapping of the whole file stays resident), `.bin` through
torch.load(weights_only=True, mmap=True). `StreamingWriter` writes a standard safetensors file
whose header is known up front (shapes and dtypes come from the base model), then each tensor's
bytes in turn; the safetensors library offers no incremental writer and its `save_file` holds a
second copy of every tensor as bytes.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import BinaryIO

import torch
from safetensors import safe_open

from ..models.hf_layout import PYTORCH_BIN, SAFETENSORS, CheckpointError
from .keys import canonical_names

_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
           torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
           torch.bool: "BOOL"}
_TORCH_DTYPES = {v: k for k, v in _DTYPES.items()}


def weights_file(source: str | Path) -> Path:
    """The weights of a checkpoint: a directory in the official layout, or the file itself."""
    path = Path(source).expanduser()
    if path.is_dir():
        for name in (SAFETENSORS, PYTORCH_BIN):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: no weights found (expected {SAFETENSORS} or {PYTORCH_BIN})")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file or directory")
    return path


class LazyCheckpoint:
    """Tensor metadata up front, tensor data on demand, under canonical names."""

    def __init__(self, source: str | Path):
        self.file = weights_file(source)
        self._state: dict[str, torch.Tensor] | None = None
        try:
            if self.file.suffix == ".safetensors":
                with safe_open(self.file, framework="pt") as f:
                    stored = list(f.keys())
                    slices = {k: f.get_slice(k) for k in stored}
                    meta = {k: (tuple(v.get_shape()), _TORCH_DTYPES[v.get_dtype()]) for k, v in slices.items()}
            else:
                # weights_only refuses pickled code; mmap leaves the data on disk until it is read.
                self._state = torch.load(self.file, map_location="cpu", weights_only=True, mmap=True)
                if not isinstance(self._state, dict):
                    raise CheckpointError(f"{self.file}: expected a state dict, found {type(self._state).__name__}")
                stored = list(self._state)
                meta = {k: (tuple(v.shape), v.dtype) for k, v in self._state.items()}
        except CheckpointError:
            raise
        except Exception as err:
            raise CheckpointError(f"{self.file}: cannot read weights ({err})") from None
        self.names = canonical_names(stored, self.file)  # canonical -> stored
        self.shapes = {c: meta[s][0] for c, s in self.names.items()}
        self.dtypes = {c: meta[s][1] for c, s in self.names.items()}

    def read(self, name: str) -> torch.Tensor:
        """Tensor `name` (canonical spelling)."""
        stored = self.names[name]
        try:
            if self._state is not None:
                return self._state[stored].clone()
            with safe_open(self.file, framework="pt") as f:
                return f.get_tensor(stored)
        except Exception as err:
            raise CheckpointError(f"{self.file}: cannot read tensor {stored!r} ({err})") from None


class StreamingWriter:
    """A safetensors file written tensor by tensor, in the order of `specs` (name -> (shape, dtype))."""

    def __init__(self, path: Path, specs: dict[str, tuple[tuple[int, ...], torch.dtype]],
                 metadata: dict[str, str] | None = None):
        self.specs, self.order, self.offset = specs, list(specs), 0
        header: dict = {"__metadata__": metadata} if metadata else {}
        for name, (shape, dtype) in specs.items():
            size = torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()
            header[name] = {"dtype": _DTYPES[dtype], "shape": list(shape), "data_offsets": [self.offset, self.offset + size]}
            self.offset += size
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)  # the format pads the header to 8 bytes with spaces
        self.file: BinaryIO = open(path, "wb")
        self.file.write(struct.pack("<Q", len(encoded)) + encoded)

    def write(self, name: str, tensor: torch.Tensor) -> None:
        expected = self.order.pop(0) if self.order else None
        if name != expected:
            raise RuntimeError(f"StreamingWriter: got {name!r}, expected {expected!r}")
        shape, dtype = self.specs[name]
        if tuple(tensor.shape) != tuple(shape) or tensor.dtype != dtype:
            raise RuntimeError(f"StreamingWriter: {name!r} is {tuple(tensor.shape)} {tensor.dtype}, header says "
                               f"{tuple(shape)} {dtype}")
        self.file.write(memoryview(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()))

    def close(self) -> None:
        if self.order:
            self.file.close()
            raise RuntimeError(f"StreamingWriter: {len(self.order)} tensors never written ({self.order[0]!r}, ...)")
        self.file.close()
