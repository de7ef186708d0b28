"""A procedurally generated, labelled corpus of four musical traditions, deterministic from a seed.

Made for replaying the CultureMERT experiment at toy scale on a CPU: pre-train on "western",
see the encoder represent the other traditions poorly, adapt it to them. The traditions differ in
what music is made of, not in level or a fixed tone or spectral tilt:

  western  12-TET major/minor, functional chord progressions, 4/4 and 3/4
  makam    53-comma (Holdrian) makams rast/hicaz/ussak/huseyni, additive usuls 9/8 7/8 10/8
  raga     just-intonation ragas over a tanpura drone, meend and andolan, teental/rupak/jhaptal
  greek    12-TET modal dromoi over two-chord vamps or drones, dance metres 7/8 and 9/8

Every clip is polyphonic (melody + accompaniment/drone + percussion, 3-5 instruments), mono
float32 at 24 kHz, exactly `seconds` long, with a light room, a noise floor 30-40 dB down and a
peak of -3 dBFS (-6..+2 dB). Module map: `tunings` (pitch systems and modes), `rhythm` (metres
and the time grid), `phrases` and `traditions` (composition), `score` (notes, hits, labels),
`dsp`, `instruments` and `percussion` (synthesis), `render` (stems and mix), `corpus` (files).

API:
    TRADITIONS = ("western", "makam", "raga", "greek")
    render_clip(tradition, seed, seconds=5.0) -> (audio [n] float32, labels dict)
    render_stems(tradition, seed, seconds=5.0) -> ({instrument: dry stem}, labels): what
        render_clip mixes, one stem per instrument, for checking content
    compose(tradition, seed, seconds=5.0) -> Score: the notes without audio; .labels()
    write_corpus(out, clips_per_tradition, seconds=5.0, seed=0, split=None, progress=True,
                 workers=None) -> out/manifest.jsonl
    clip_seed(seed, tradition, index) -> the seed of clip `index` in a corpus

Labels: tradition, mode ("makam/hicaz"), metre ("9/8 (2+2+2+3)", "tala/rupak"), instruments,
tonic_hz, tempo_bpm (pulse rate: quarters, eighths or matras), seconds, scale_cents, groups,
pulse_s, downbeat_s (first cycle start at or after 0), and parts: per instrument its role and
onsets (s) with durations, cents above the tonic, glides and gamakas [depth cents, rate Hz], or
for percussion strokes and accents (2 cycle start, 1 group start, 0 other). A drone's onsets may
be negative: it was already sounding when the clip starts.
"""

from .corpus import clip_seed, write_corpus
from .dsp import SAMPLE_RATE
from .render import render_clip, render_stems
from .traditions import TRADITIONS, compose

__all__ = ["SAMPLE_RATE", "TRADITIONS", "clip_seed", "compose", "render_clip", "render_stems", "write_corpus"]
