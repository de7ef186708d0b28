"""Beat This! (Foscarin, Schlüter and Widmer, ISMIR 2024) from a checkpoint file the user gives.

The `beat-this` package's own audio front end imports torchaudio, which melos does not depend
on, so this module takes only the model class and the peak-picking postprocessor from the
package and computes the input itself, as `beat_this.preprocessing.LogMelSpect` does:

    22050 Hz mono -> |STFT| (1024-point periodic Hann, hop 441 = 50 frames/s, centred, reflect
    padding, divided by the window's L2 norm) -> 128 Slaney-scale mel bands 30 Hz-11 kHz, not
    area-normalised -> log1p(1000 x)

and runs the model on 30 s chunks that overlap by 6 frames at each side, as
`beat_this.inference.split_predict_aggregate` does. The checkpoint is read with
torch.load(weights_only=True); nothing is downloaded.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr
import torch

SAMPLE_RATE = 22050
N_FFT = 1024
HOP_LENGTH = 441  # 50 frames per second
N_MELS = 128
F_MIN, F_MAX = 30.0, 11000.0
CHUNK_FRAMES = 1500  # 30 s per model call, the length the model was trained on
BORDER_FRAMES = 6  # frames at each chunk edge whose predictions are discarded
BEAT_THIS_NEEDS = ("beats=beat-this:PATH needs the beat-this package (pip install beat-this) and a checkpoint "
                   "file you downloaded yourself; melos never downloads weights")


@dataclass
class BeatThisResult:
    beats: np.ndarray  # seconds
    downbeats: np.ndarray  # seconds, a subset of `beats`


def beat_this_beats(audio: np.ndarray, sample_rate: int, checkpoint: Path) -> BeatThisResult:
    """Beats and downbeats of a mono waveform [N] by the Beat This! model in `checkpoint`.

    Raises:
        ValueError: the beat-this package (or einops / rotary-embedding-torch) is missing, or
            the file is not a Beat This! checkpoint.
    """
    try:
        from beat_this.model.postprocessor import Postprocessor
    except ImportError as error:
        raise ValueError(f"{BEAT_THIS_NEEDS} ({error})") from error
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_model(checkpoint, device)
    audio = soxr.resample(audio, sample_rate, SAMPLE_RATE) if sample_rate != SAMPLE_RATE else audio
    spect = log_mel(torch.as_tensor(audio, dtype=torch.float32, device=device))  # [T, 128]
    with torch.inference_mode():
        beat, downbeat = predict_logits(model, spect)
    beats, downbeats = Postprocessor(type="minimal", fps=SAMPLE_RATE // HOP_LENGTH)(beat, downbeat)
    return BeatThisResult(np.asarray(beats, dtype=float), np.asarray(downbeats, dtype=float))


def load_model(checkpoint: Path, device: torch.device) -> torch.nn.Module:
    """The BeatThis model a PyTorch Lightning checkpoint of the beat-this project describes."""
    from beat_this.model.beat_tracker import BeatThis

    try:
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        hparams, state = saved["hyper_parameters"], saved["state_dict"]
    except Exception as error:  # unpickling errors have many types; all mean "not this format"
        raise ValueError(f"{checkpoint}: not a Beat This! checkpoint ({error})") from error
    accepted = set(inspect.signature(BeatThis).parameters)
    model = BeatThis(**{k: v for k, v in hparams.items() if k in accepted})
    # The Lightning module holds the model as `model.`; compiled models add `_orig_mod.`.
    state = {k.removeprefix("model.").replace("_orig_mod.", ""): v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{checkpoint}: weights do not fit the Beat This! model ({error})") from error
    return model.to(device).eval()


def log_mel(audio: torch.Tensor) -> torch.Tensor:
    """Beat This!'s input: log-compressed mel magnitudes [T, 128] of 22050 Hz audio [N]."""
    import librosa

    window = torch.hann_window(N_FFT, device=audio.device)
    spectrum = torch.stft(audio, N_FFT, HOP_LENGTH, window=window, center=True, pad_mode="reflect",
                          return_complex=True).abs() / window.square().sum().sqrt()  # [F, T]
    # librosa's Slaney filters without area normalisation equal torchaudio's MelScale(norm=None).
    filters = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=F_MIN, fmax=F_MAX,
                                  htk=False, norm=None)
    mel = torch.as_tensor(filters, dtype=spectrum.dtype, device=audio.device) @ spectrum  # [128, T]
    return torch.log1p(1000 * mel).T


def predict_logits(model: torch.nn.Module, spect: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame-wise beat and downbeat logits [T] for a whole piece, predicted chunk by chunk.

    Chunks of CHUNK_FRAMES overlap so that every frame is predicted at least BORDER_FRAMES
    from a chunk edge; where chunks overlap the earlier chunk's prediction is kept. The last
    chunk is moved back to end at the piece's end rather than being short.

        chunk 0:  [pad|----------------|b]
        chunk 1:                  [b|----------------|b]        b = BORDER_FRAMES, discarded
    """
    n = len(spect)
    step = CHUNK_FRAMES - 2 * BORDER_FRAMES
    starts = list(range(-BORDER_FRAMES, n - BORDER_FRAMES, step))
    if n > step:
        starts[-1] = n - (CHUNK_FRAMES - BORDER_FRAMES)
    beat = torch.full((n,), -1000.0, device=spect.device)
    downbeat = torch.full((n,), -1000.0, device=spect.device)
    for start in reversed(starts):  # earlier chunks overwrite later ones
        lo, hi = max(start, 0), min(start + CHUNK_FRAMES, n)
        chunk = torch.nn.functional.pad(spect[lo:hi], (0, 0, lo - start, max(0, min(BORDER_FRAMES, start + CHUNK_FRAMES - n))))
        out = model(chunk.unsqueeze(0))  # {"beat": [1, T'], "downbeat": [1, T']}
        keep = slice(BORDER_FRAMES, len(chunk) - BORDER_FRAMES)
        frames = slice(start + BORDER_FRAMES, start + BORDER_FRAMES + len(chunk) - 2 * BORDER_FRAMES)
        beat[frames] = out["beat"][0, keep].float()
        downbeat[frames] = out["downbeat"][0, keep].float()
    return beat, downbeat
