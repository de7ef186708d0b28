"""Waveform masking in fixed segments, as the efficient encoders' pre-training does (spec section 7).

The clip is cut into segments of `segment_length` samples (400 ms = 9,600 at 24 kHz; the last
one may be shorter), each segment is chosen independently with probability `mask_prob`, and the
chosen segments of the waveform are set to zero. The encoder sees the zeroed waveform; the loss
is taken on the encoder frames whose centre falls in a chosen segment:

    samples   |<- segment 0 ->|<- segment 1 ->|<- segment 2 ->|
    chosen           no              yes             no
    audio     ~~~~~~~~~~~~~~~~ 000000000000000 ~~~~~~~~~~~~~~~~
    frames    |  |  |  |  |  | x| x| x| x| x|  |  |  |  |  |      frame t spans [t*hop, (t+1)*hop),
                                                                 masked when t*hop + hop/2 is chosen

When the hop divides the segment length (960 into 9,600 at 25 Hz) the centre rule and "the whole
frame lies in a chosen segment" agree; otherwise the centre rule masks a frame that is mostly
zeroed. Every clip gets at least one masked frame (hence one masked segment), so a masked-frame
loss always exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SegmentMask:
    """Result of :func:`mask_segments`.

    Attributes:
        audio: masked waveform [B, N], zero inside chosen segments, the input elsewhere.
        frame_mask: bool [B, T], True where the encoder frame's centre lies in a chosen segment.
        segment_mask: bool [B, S], True for chosen segments, S = ceil(N / segment_length).
    """

    audio: torch.Tensor
    frame_mask: torch.Tensor
    segment_mask: torch.Tensor


def mask_segments(audio: torch.Tensor, n_frames: int, hop_length: float, segment_length: int,
                  mask_prob: float = 0.2, generator: torch.Generator | None = None) -> SegmentMask:
    """Zero random fixed-length segments of each clip and mark the encoder frames they cover.

    Draws are made on the CPU and are fresh on every call (a new mask each epoch). Each clip draws
    S Bernoulli(mask_prob) choices and one uniform frame index; a clip that ends up with no masked
    frame gets the segment holding that frame's centre, so at least one frame is always masked.
    The guarantee adds about (1 - mask_prob)^S chosen segments per clip on average: negligible
    for 30 s clips (0.8^75), noticeable for clips of a few segments.

    Args:
        audio: clean waveform [B, N].
        n_frames: T, encoder frames to mark (frame t covers samples [t*hop, (t+1)*hop)).
        hop_length: samples per encoder frame, sample_rate / frame_rate (may be fractional).
        segment_length: samples per segment.
        mask_prob: probability that a segment is chosen.
        generator: for reproducible masks (the global RNG otherwise).

    Returns:
        a :class:`SegmentMask` with tensors on the device of `audio`.
    """
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob must be in [0, 1], got {mask_prob}")
    if segment_length < 1 or hop_length <= 0:
        raise ValueError(f"need segment_length >= 1 and hop_length > 0, got {segment_length}, {hop_length}")
    if n_frames < 1:
        raise ValueError(f"the clip has no encoder frames (n_frames={n_frames}): nothing to mask")
    B, N = audio.shape
    S = -(-N // segment_length)
    segments = torch.rand(B, S, generator=generator) < mask_prob  # [B, S]
    fallback = torch.randint(n_frames, (B,), generator=generator)  # drawn always: same RNG use each call
    centres = (torch.arange(n_frames, dtype=torch.float64) + 0.5) * hop_length
    # clamp: an encoder that pads may place its last frame centre past the end of the clip
    frame_segment = (centres // segment_length).long().clamp(max=S - 1)  # [T]
    empty = ~segments[:, frame_segment].any(dim=1)  # [B]
    segments[empty, frame_segment[fallback[empty]]] = True
    sample_segment = torch.arange(N) // segment_length  # [N]
    segments = segments.to(audio.device)
    sample_mask = segments[:, sample_segment.to(audio.device)]  # [B, N]
    return SegmentMask(audio=audio.masked_fill(sample_mask, 0.0),
                       frame_mask=segments[:, frame_segment.to(audio.device)],
                       segment_mask=segments)
