"""CQT teacher: parity with nnAudio's CQT1992v2, agreement with librosa, and analytic checks."""

import math

import numpy as np
import pytest
import torch

from melos.teachers.cqt import CQT, align_frames, decimation

SR, HOP, FMIN, BINS, BPO = 24000, 320, 32.7, 336, 48
Q = 1 / (2 ** (1 / BPO) - 1)


def _bin_freq(k: int) -> float:
    return FMIN * 2 ** (k / BPO)


def _sine(freq: float, seconds: float = 2.0, amp: float = 1.0) -> torch.Tensor:
    t = torch.arange(round(seconds * SR), dtype=torch.float64) / SR
    return (amp * torch.sin(2 * math.pi * freq * t)).float()


@pytest.fixture(scope="module")
def cqt() -> CQT:
    return CQT()


@pytest.fixture(scope="module")
def noise() -> torch.Tensor:
    return torch.randn(2, 2 * SR, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def tones() -> torch.Tensor:
    return torch.stack([_sine(220) + 0.5 * _sine(1500), 0.3 * _sine(440) + _sine(3000)])


@pytest.fixture(scope="module")
def nnaudio_cqt() -> torch.nn.Module:
    from nnAudio import features
    return features.CQT1992v2(
        sr=SR, hop_length=HOP, fmin=FMIN, n_bins=BINS, bins_per_octave=BPO, norm=1,
        window="hann", center=True, pad_mode="constant", output_format="Magnitude",
        trainable=False, verbose=False,
    )


@pytest.mark.parametrize("signal", ["noise", "tones"])
def test_matches_nnaudio(
    cqt: CQT, nnaudio_cqt: torch.nn.Module, signal: str, request: pytest.FixtureRequest
) -> None:
    x = request.getfixturevalue(signal)
    ours, theirs = cqt(x), nnaudio_cqt(x)
    assert ours.shape == theirs.shape == (2, BINS, x.shape[-1] // HOP + 1)
    # Same float64 kernels rounded to float32; only the float32 summation order over up to 50k
    # taps differs (octave-cropped kernels), measured ~1e-5 of the peak.
    assert (ours - theirs).abs().max() < 1e-4 * theirs.max()


def test_decimation_keeps_each_octave_below_half_the_new_nyquist() -> None:
    assert [d for d, _ in CQT().octaves] == [64, 32, 16, 8, 4, 2, 1]
    assert decimation(300, SR, 65.0) == 4  # only powers of two that divide the hop
    for hop in (320, 300, 256):
        for top in (65.0, 500.0, 4000.0):
            d = decimation(hop, SR, top)
            assert hop % d == 0 and SR / (2 * d) >= 2 * top


@pytest.mark.parametrize("hop", [256, 300])
def test_matches_nnaudio_at_other_hops(hop: int, noise: torch.Tensor) -> None:
    """Other hops give other decimation factors and decimated grids; the values must not move."""
    from nnAudio import features
    theirs = features.CQT1992v2(sr=SR, hop_length=hop, fmin=FMIN, n_bins=BINS, bins_per_octave=BPO, norm=1,
                                window="hann", center=True, pad_mode="constant", output_format="Magnitude",
                                trainable=False, verbose=False)(noise)
    ours = CQT(hop_length=hop)(noise)
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max() < 1e-4 * theirs.max()


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("signal", ["noise", "tones"])
def test_agrees_with_librosa(cqt: CQT, signal: str, request: pytest.FixtureRequest) -> None:
    """librosa filters octave by octave on a downsampled signal, so values differ slightly, but
    its default normalisation (L1 filters, scale=True) is the one CQT1992v2's "librosa" mode
    mimics. Away from the edges (resampling artefacts) we compare each frame's spectral shape,
    and on noise, where no bin is near-silent, the absolute level of every bin."""
    import librosa
    x = request.getfixturevalue(signal)[0]
    interior = slice(20, -20)
    ours = cqt(x[None])[0].numpy()[:, interior]
    ref = np.abs(librosa.cqt(x.numpy(), sr=SR, hop_length=HOP, fmin=FMIN, n_bins=BINS,
                             bins_per_octave=BPO))[:, interior]
    assert ours.shape == ref.shape
    cosine = (ours * ref).sum(0) / (np.linalg.norm(ours, axis=0) * np.linalg.norm(ref, axis=0))
    assert cosine.min() > 0.99
    if signal == "noise":
        ratio = np.median(ours / ref, axis=1)
        assert np.abs(ratio - 1).max() < 0.05


@pytest.mark.parametrize("near", [110, 440, 1000, 3000])
def test_tone_peaks_at_its_bin(cqt: CQT, near: float) -> None:
    """A unit sine at a bin centre peaks in that bin with steady-state magnitude sqrt(l_k) / 2:
    the L1-normalised kernel picks up the positive-frequency half, times the sqrt(l_k) scale."""
    k = round(BPO * math.log2(near / FMIN))
    mag = cqt(_sine(_bin_freq(k))[None])[0]
    assert mag.mean(-1).argmax().item() == k
    length = math.ceil(Q * SR / _bin_freq(k))
    steady = mag[k, 60:90]
    assert torch.allclose(steady, torch.full_like(steady, math.sqrt(length) / 2), rtol=1e-3)


def test_off_centre_tone_peaks_at_nearest_bin(cqt: CQT) -> None:
    exact = BPO * math.log2(1000 / FMIN)
    peak = cqt(_sine(1000)[None])[0].mean(-1).argmax().item()
    assert abs(peak - exact) <= 1


def test_batch_equals_single(cqt: CQT, noise: torch.Tensor, tones: torch.Tensor) -> None:
    x = torch.cat([noise, tones[:1]])
    batch = cqt(x)
    single = torch.cat([cqt(item[None]) for item in x])
    assert torch.allclose(batch, single, atol=1e-5 * single.max().item())


def test_scaling(cqt: CQT, tones: torch.Tensor) -> None:
    assert torch.allclose(cqt(2 * tones), 2 * cqt(tones), rtol=1e-6, atol=0)


@pytest.mark.parametrize("n", [400, 1000, 24000, 48123])
def test_frame_count_and_alignment(cqt: CQT, n: int) -> None:
    x = torch.randn(3, n, generator=torch.Generator().manual_seed(n))
    mag = cqt(x)
    assert mag.shape == (3, BINS, n // HOP + 1)
    t = (n - 400) // HOP + 1
    targets = align_frames(mag, t)
    assert targets.shape == (3, t, BINS)
    assert torch.equal(targets, mag[..., :t].transpose(1, 2))


def test_align_frames_pads_by_repeating_last_frame() -> None:
    mag = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    out = align_frames(mag, 5)
    assert out.shape == (2, 5, 4)
    assert torch.equal(out[:, :3], mag.transpose(1, 2))
    assert torch.equal(out[:, 3], mag[..., -1]) and torch.equal(out[:, 4], mag[..., -1])


def test_autocast_keeps_float32(cqt: CQT, tones: torch.Tensor) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = cqt(tones)
    assert out.dtype == torch.float32
    assert torch.allclose(out, cqt(tones), atol=1e-5 * out.max().item())


def test_kernels_stay_out_of_state_dict(cqt: CQT) -> None:
    assert cqt.state_dict() == {}


def test_top_bin_above_nyquist_raises() -> None:
    with pytest.raises(ValueError, match="Nyquist"):
        CQT(sample_rate=8000)
