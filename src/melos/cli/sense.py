"""`melos sense`: haptic tracks from music, in the formats devices read."""

from __future__ import annotations

import argparse
import sys

from .options import add_allow_truncated, add_progress

HELP = """\
Turn music into haptic (vibrotactile) tracks, time-aligned with the audio. Each input is
analysed (loudness envelopes, low band, brightness, onsets, beats and downbeats, harmonic /
percussive stems), mapped to one haptic track (transients on onsets and beats, a continuous bed
from the bass), and exported. Every export passes a validator of its format before it is written.

formats (--formats, default the five haptic ones):
  ahap     haptics.ahap: Apple Core Haptics pattern (iPhone; CHHapticPattern, AVAudioPlayer + CHHapticEngine)
  android  haptics.android.json: timings (ms) and amplitudes (0-255) for
           VibrationEffect.createWaveform (any Android phone)
  ogg      haptics.ogg: the audio plus haptic PCM channel(s), tagged ANDROID_HAPTIC=<n>: Android
           plays the haptics with the music on devices with audio-coupled haptics
  haptic   haptics.haptic: Meta Haptics Studio / Lofelt clip (Meta Quest controllers, Haptics SDK)
  wav      drive.wav: 8 kHz signal for a voice-coil actuator or a haptic vest's audio input,
           a carrier at the actuator's resonance (--carrier, default 170 Hz)
  html     sense.html: one offline page with the audio and every lane (waveform, spectrogram,
           beats, onsets, stems, haptic layers, sections), a playhead on the audio's clock,
           click to seek, and vibration with the transients where the browser can
  mp4      video.mp4: H.264 + AAC, 720p 30 fps: the score scrolling under a fixed playhead
           and an audio-reactive panel (bass / mid / treble, beat pulses)

OUT gets a folder per input (its path relative to INPUT) with the files above and analysis.json,
plus index.jsonl (one row per input). A bad file is reported with its reason and the others go
on; the exit status is 1 if any failed. Learned beat trackers and separators (Beat This!,
Demucs) run only from a checkpoint file you give; melos never downloads weights.

sections (--model, optional, slower): a melos encoder embeds 2 s windows every second; where the
embeddings change (novelty on their self-similarity) the music is cut into sections of at least
8 s, listed in analysis.json. Each section's haptics are scaled by its loudness relative to the
whole track (0.6-1.3x), so a quiet intro is gentler and a loud chorus stronger; a section
quieter than the track keeps only that fraction of its transients (at least half, the
strongest) and no beat taps, so it is sparser too.

tags (--probe, with --model): a probe `melos probe` saved (RESULTS/probes/<n>-<task>.safetensors)
tags each section: the encoder's hidden states pooled over the task's windows go through the
probe, and its probabilities averaged over the section's windows are listed in analysis.json
(the 5 likeliest tags, and any other above 0.5). The probe must come from the same --model
(same weights); another one is refused.

examples:
  melos sense song.ogg --out haptics/
  melos sense music/ --out haptics/ --formats ahap,android --preset punchy --plot
  melos sense files.jsonl --out haptics/ --skip-existing          # resume
  melos sense song.ogg --out haptics/ --model m-a-p/MERT-v1-95M   # with sections
  melos sense song.ogg --out haptics/ --model m-a-p/MERT-v1-95M \
      --probe results/probes/0-genre.safetensors                  # with tags per section
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    # melos.sense is not imported here: it loads librosa, and `melos --help` should stay fast
    p = commands.add_parser("sense", help="music to haptic tracks (AHAP, Android, Ogg, Meta .haptic, drive WAV)",
                            description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="audio file, folder (searched recursively) or JSONL manifest with a 'path' per line")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--formats", default=None,
                   help="comma list of the formats above (default ahap,android,ogg,haptic,wav)")
    p.add_argument("--preset", default="default", help="how strong transients and the bed are: subtle, default or punchy")
    p.add_argument("--beats", default="librosa",
                   help="beat tracker: librosa (default, no weights) or beat-this:CHECKPOINT (a Beat This! "
                        "checkpoint file you downloaded)")
    p.add_argument("--stems", default="hpss",
                   help="stem separation: hpss (harmonic/percussive, default) or demucs:CHECKPOINT")
    p.add_argument("--min-gap", type=float, default=0.08,
                   help="shortest time between two transients in seconds, 0.05-0.2 (default 0.08)")
    p.add_argument("--carrier", dest="carrier_hz", type=float, default=170.0,
                   help="actuator resonance for drive.wav and the Ogg's haptic channel, 150-250 Hz (default 170)")
    p.add_argument("--model", default=None,
                   help="optional, slower: a melos encoder (preset, checkpoint folder or model.safetensors) whose "
                        "embeddings split the music into sections, each felt as strongly as it is loud")
    p.add_argument("--probe", default=None,
                   help="with --model: a probe file `melos probe` saved for that model "
                        "(OUT/probes/<n>-<task>.safetensors), for per-section tags")
    p.add_argument("--plot", action="store_true", help="also write track.png: the waveform with the haptic layers")
    p.add_argument("--skip-existing", action="store_true",
                   help="keep inputs an earlier run finished (resume an interrupted run); retry failed ones")
    add_allow_truncated(p, "that part is turned into haptics")
    add_progress(p)


def run(input: str, out: str, formats: str | None, min_gap: float, probe: str | None = None, **kwargs) -> int:
    from ..sense import DEFAULT_FORMATS, sense

    if not 0.05 <= min_gap <= 0.2:
        raise ValueError(f"--min-gap must be 0.05-0.2 s, got {min_gap:g}")
    chosen = [f.strip() for f in formats.split(",") if f.strip()] if formats else list(DEFAULT_FORMATS)
    summary = sense(input, out, formats=chosen, min_gap=min_gap, probe=probe, **kwargs)
    speed = summary.audio_seconds / max(summary.wall_seconds, 1e-9)
    print(f"haptics for {summary.n_done} files ({summary.audio_seconds / 60:.1f} min of audio, {speed:.1f}x real "
          f"time), skipped {summary.n_skipped} done earlier, {len(summary.failed)} failed -> {summary.out_dir}")
    for reason in summary.failed.values():
        print(f"  failed: {reason}", file=sys.stderr)
    return 0 if summary.ok else 1
