"""The CQT teacher: octave-wise decimation against the direct full-rate convolution, same kernels.

    python benchmarks/cqt_teacher.py [--device cpu] [--repeats 5]

The reference is what `melos.teachers.cqt.CQT` computed before decimation (and what nnAudio's
CQT1992v2 computes): every octave's cropped kernels convolved with the signal at 24 kHz, stride
320. Prints, per batch shape, the median time of each, the speed-up and the largest difference
relative to the peak magnitude (float32 rounding is ~1e-5).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from melos.teachers.cqt import CQT, cqt_kernels


class DirectCQT:
    """The same kernels at the full rate: one strided conv1d per octave (the reference)."""

    def __init__(self, cqt: CQT, device: str, fmin: float = 32.7, bins_per_octave: int = 48):
        self.hop_length = cqt.hop_length
        blocks, self.starts, _, self.fft_len = cqt_kernels(cqt.sample_rate, fmin, cqt.n_bins, bins_per_octave)
        self.kernels = [torch.from_numpy(np.concatenate([b.real, b.imag])).float()[:, None].to(device)
                        for b in blocks]

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        x = F.pad(audio[:, None], (self.fft_len // 2, self.fft_len // 2))
        n_frames = (x.shape[-1] - self.fft_len) // self.hop_length + 1
        out = []
        for start, weight in zip(self.starts, self.kernels):
            span = (n_frames - 1) * self.hop_length + weight.shape[-1]
            real, imag = F.conv1d(x[..., start:start + span], weight, stride=self.hop_length).chunk(2, dim=1)
            out.append(torch.sqrt(real.square() + imag.square()))
        return torch.cat(out, dim=1)


def median_time(fn, x: torch.Tensor, repeats: int) -> float:
    fn(x)
    times = []
    for _ in range(repeats):
        if x.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(x)
        if x.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cqt = CQT().to(args.device)
    direct = DirectCQT(cqt, args.device)
    print(f"decimation per octave (low to high): {[d for d, _ in cqt.octaves]}")
    print("| batch | decimated | direct | speed-up | max difference / peak |")
    print("|---|---|---|---|---|")
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for batch, seconds in [(8, 2.0), (4, 5.0), (1, 30.0)]:
            x = torch.randn(batch, int(seconds * 24000), generator=generator).to(args.device)
            fast, slow = median_time(cqt, x, args.repeats), median_time(direct, x, args.repeats)
            a, b = cqt(x), direct(x)
            error = float((a - b).abs().max() / b.abs().max())
            print(f"| {batch} x {seconds:g} s | {fast * 1e3:.0f} ms | {slow * 1e3:.0f} ms | {slow / fast:.1f}x | {error:.1e} |")


if __name__ == "__main__":
    main()
