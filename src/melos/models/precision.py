"""Inference in bfloat16 with the weights held in bfloat16 (not autocast's cast on every call).

    Linear, Conv, positional conv   weights in bf16; their input is cast to bf16 on the way in
    LayerNorm                       weights and arithmetic in fp32, output in its input's dtype
    GroupNorm                       weights in fp32, bf16 in and out: torch's mixed-type CPU kernel
                                    keeps its statistics in fp32 (the feature extractor's first
                                    GroupNorm spans 512 x 144,000 values of a 30 s window, whose
                                    casts to fp32 and back cost 6x the norm itself)
    residual stream                 fp32 wherever a norm or the first layer's input feeds it
                                    (bf16 + fp32 promotes to fp32), so MERT's hidden states,
                                    all LayerNorm outputs or sums onto them, keep fp32's range
    attention                       SDPA on bf16 q, k, v (its softmax accumulates in fp32)

On a CPU with AVX512-BF16 or AMX, oneDNN multiplies bf16 matrices about twice as fast as fp32;
`bf16_supported` says whether this one does.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .encoder import Encoder


def bf16_supported() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX, through oneDNN)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _to_float32(module: nn.Module, args: tuple) -> tuple:
    return (args[0].float(), *args[1:])


def _norm_input(module: nn.Module, args: tuple) -> tuple:
    module.output_dtype = args[0].dtype
    return (args[0].float(), *args[1:])


def _norm_output(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    return output.to(module.output_dtype)


def _to_weight_dtype(module: nn.Module, args: tuple) -> tuple:
    dtype = next(module.parameters(recurse=False)).dtype
    return (args[0].to(dtype), *args[1:])


def held_in_bfloat16(encoder: Encoder) -> Encoder:
    """A copy of `encoder` for bf16 inference on CPU (see the module docstring); `encoder` is
    left as it was. Its hidden states come out in fp32 or bf16; pool them in fp32."""
    model = copy.deepcopy(encoder).eval().to(torch.bfloat16)
    for module in model.modules():
        if isinstance(module, nn.GroupNorm):  # bf16 in and out, fp32 weights and statistics
            module.float()
        elif isinstance(module, nn.LayerNorm):  # computed in fp32, returned in the dtype it was given
            module.float()
            module.register_forward_pre_hook(_norm_input)
            module.register_forward_hook(_norm_output)
        elif any(True for _ in module.parameters(recurse=False)):
            module.register_forward_pre_hook(_to_weight_dtype)
    stack = getattr(model, "encoder", None)
    if isinstance(stack, nn.Module):  # MERT's Transformer: its residual stream starts in fp32
        stack.register_forward_pre_hook(_to_float32)
    return model
