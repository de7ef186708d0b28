"""Live SENSE: timing against known onsets, block-size invariance, causality, agreement with the
offline analysis, the bed against a hand-computed RMS, the CLI and the WebSocket server."""

import asyncio
import io
import json
import socket
import subprocess
import sys
import threading

import mir_eval
import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, sosfreqz

from melos.cli import main
from melos.sense.analysis import analyze
from melos.sense.features import LOW_BAND
from melos.sense.live import LOOKAHEAD, LiveConfig, SenseStream
from melos.sense.mapping import PRESETS

SR = 24000


def clicks_and_tones(times: np.ndarray, seconds: float, seed: int = 0) -> np.ndarray:
    """Alternating clicks (a decaying noise burst) and harmonic tone bursts (6 partials, 2 ms attack)
    at `times`, over a -70 dB noise floor."""
    rng = np.random.default_rng(seed)
    x = 3e-4 * rng.standard_normal(round(seconds * SR))
    n = round(0.12 * SR)
    t = np.arange(n) / SR
    fade = np.minimum(1, (n - np.arange(n)) / (0.05 * SR))  # no click where a note ends
    for i, onset in enumerate(times):
        if i % 2:
            f0 = rng.uniform(200, 1000)
            note = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 7))
            note *= np.minimum(1, t / 0.002) * np.exp(-t / 0.03)
        else:
            note = rng.standard_normal(n) * np.exp(-t / 0.01)
        note *= fade
        start = round(onset * SR)
        x[start:start + n] += rng.uniform(0.3, 1.0) * note[:len(x) - start]
    return x


def stream(x: np.ndarray, sizes=None, config: LiveConfig | None = None, sample_rate: int = SR) -> list[dict]:
    """Every event of `x` pushed in blocks of `sizes` (cycled; default 10 ms)."""
    s = SenseStream(sample_rate, config=config)
    sizes = sizes if sizes is not None else [round(0.01 * sample_rate)]
    events, i, k = [], 0, 0
    while i < len(x):
        events += s.push(x[i:i + sizes[k % len(sizes)]])
        i += sizes[k % len(sizes)]
        k += 1
    return events


def transient_times(events: list[dict]) -> np.ndarray:
    return np.array([e["time"] for e in events if e["type"] == "transient"])


TIMES = np.array([0.3037, 0.5511, 0.8263, 1.1009, 1.3377, 1.6841, 1.9123, 2.2489, 2.5017, 2.8333])


def test_transients_are_on_time_whatever_the_block_sizes():
    x = clicks_and_tones(TIMES, 3.2)
    rng = np.random.default_rng(1)
    reference = stream(x)
    for sizes in ([1, 7, 240, 100, 13], list(rng.integers(1, 241, 50)), [239]):
        assert stream(x, sizes) == reference  # the same events, to the last digit
    found = transient_times(reference)
    assert len(found) == len(TIMES)
    assert np.max(np.abs(found - TIMES)) <= 0.003, found - TIMES  # a tone's 2 ms ramp may be dated on its way up
    for e in reference:
        if e["type"] == "transient":
            assert 0 < e["intensity"] <= 1 and 0 <= e["sharpness"] <= 1 and e["layer"] == "onset"


def test_events_are_returned_within_the_look_ahead_plus_a_hop():
    x = clicks_and_tones(TIMES, 3.2)
    s = SenseStream(SR)
    for i in range(0, len(x), 1):  # one sample at a time: the emission time is exact
        for e in s.push(x[i:i + 1]):
            if e["type"] == "transient":
                onset = TIMES[np.argmin(np.abs(TIMES - e["time"]))]
                assert 0 <= (i + 1) / SR - onset <= LOOKAHEAD + 0.005 + 0.002
        if i > 0.7 * SR:
            break


def test_events_before_the_look_ahead_do_not_depend_on_what_follows():
    prefix_end = round(1.2345 * SR)
    base = clicks_and_tones(TIMES, 3.2)
    base[prefix_end - round(0.03 * SR)] += 0.2  # a weak click 30 ms before the cut ...
    other = base.copy()
    rng = np.random.default_rng(5)
    other[prefix_end:] = 0.5 * rng.standard_normal(len(other) - prefix_end)  # ... then noise, not music
    other[prefix_end + round(0.004 * SR)] += 1.0  # and a loud click 4 ms after it, inside the density gate
    a, b = stream(base, [173]), stream(other, [97, 240])
    cut = prefix_end / SR - LOOKAHEAD
    before_a, before_b = [e for e in a if e["time"] < cut], [e for e in b if e["time"] < cut]
    assert before_a == before_b
    assert any(abs(e["time"] - (prefix_end / SR - 0.03)) < 0.002 for e in before_a if e["type"] == "transient")
    assert [e for e in a if e["time"] >= cut] != [e for e in b if e["time"] >= cut]  # the test can fail


def test_live_transients_agree_with_the_offline_onsets():
    """A generated multi-instrument clip (drums, plucked and bowed notes): F at +-25 ms >= 0.92, over
    the goal of 0.9 (0.933 measured on this clip; 0.95-0.98 on other western clips,
    benchmarks/sense_live.py); a live analyser that lost the attacks, the thresholds or the
    loud start would fall below it."""
    from melos.data.synth.render import render_clip

    audio, _ = render_clip("western", 11, 6.0)
    offline = analyze(audio, SR, stems="none").onsets
    live = transient_times(stream(audio))
    assert mir_eval.onset.f_measure(offline, live, window=0.025)[0] >= 0.92


def test_a_stream_that_starts_loud_starts_with_an_onset():
    """As offline, sound at 0 s is an attack (the onset tests need a past, so this is a rule of its
    own); a stream that starts on a -70 dB noise floor does not start with one."""
    loud = transient_times(stream(clicks_and_tones(np.array([0.0, 0.5]), 1.0)))
    assert len(loud) == 2 and loud[0] <= 0.001 and abs(loud[1] - 0.5) <= 0.003, loud
    quiet = transient_times(stream(clicks_and_tones(np.array([0.5]), 1.0)))
    assert len(quiet) == 1 and abs(quiet[0] - 0.5) <= 0.003, quiet
    offline = analyze(clicks_and_tones(np.array([0.0, 0.5]), 1.0), SR, stems="none").onsets
    assert offline[0] <= 0.001  # the offline rule agrees


def test_bed_is_the_low_band_rms_and_sharpness_the_centroid():
    t = np.arange(SR) / SR
    for f in (100.0, 150.0):
        x = 0.5 * np.sin(2 * np.pi * f * t)
        events = [e for e in stream(x, config=LiveConfig(bed_reference=1.0)) if e["type"] == "continuous"]
        assert np.allclose(np.diff([e["time"] for e in events]), 0.01)
        sos = butter(4, LOW_BAND, btype="bandpass", fs=SR, output="sos")
        gain = abs(sosfreqz(sos, worN=[f], fs=SR)[1][0])
        rms = 0.5 / np.sqrt(2) * gain  # a 20 ms window holds whole periods of 100 and 150 Hz
        settled = [e["amplitude"] for e in events if e["time"] > 0.5]
        np.testing.assert_allclose(settled, PRESETS["default"].bed_gain * rms, atol=2e-3)
    x = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    events = [e for e in stream(x, config=LiveConfig(bed_reference=1.0)) if e["type"] == "continuous"]
    settled = [e for e in events if e["time"] > 0.5]
    assert max(e["amplitude"] for e in settled) < 0.01  # 1 kHz is outside the bed's band
    expected = np.log(1000 / 100) / np.log(8000 / 100)  # features.sharpness of a 1 kHz centroid
    np.testing.assert_allclose([e["frequency"] for e in settled], expected, atol=0.01)


def test_bed_tracker_settles_near_full_scale_on_a_steady_tone():
    t = np.arange(2 * SR) / SR
    events = [e for e in stream(0.1 * np.sin(2 * np.pi * 100 * t)) if e["type"] == "continuous"]
    settled = np.array([e["amplitude"] for e in events if e["time"] > 1.0])
    bed_gain = PRESETS["default"].bed_gain  # the 95th percentile of a steady level is the level
    assert np.all(settled <= bed_gain) and np.all(settled >= bed_gain * np.exp(-0.95 * LiveConfig.quantile_rate))


def test_bad_blocks_are_refused():
    s = SenseStream(SR, channels=2)
    with pytest.raises(ValueError, match="blocks must be"):
        s.push(np.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        s.push(np.full((10, 2), np.nan))
    assert s.push(np.zeros((0, 2))) == []


def write_clicks(path) -> np.ndarray:
    x = clicks_and_tones(TIMES, 3.2)
    sf.write(path, x, SR, subtype="PCM_16")
    return x


def test_cli_live_file_writes_json_lines(tmp_path, capsys):
    write_clicks(tmp_path / "clicks.wav")
    assert main(["sense", "--live", str(tmp_path / "clicks.wav"), "--fast"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    found = transient_times(events)
    assert len(found) == len(TIMES) and np.max(np.abs(found - TIMES)) <= 0.003
    assert sum(e["type"] == "continuous" for e in events) == int(3.2 * 100)
    assert main(["sense", str(tmp_path / "clicks.wav")]) == 2  # offline without --out
    assert "--out is required" in capsys.readouterr().err
    (tmp_path / "bad.wav").write_text("not audio")
    assert main(["sense", "--live", str(tmp_path / "bad.wav"), "--fast"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"melos: error: {tmp_path / 'bad.wav'}: not a readable audio file")
    assert len(err.splitlines()) == 1


def test_cli_live_reads_pcm_from_stdin_and_refuses_a_partial_frame(tmp_path):
    x = clicks_and_tones(TIMES, 3.2)
    pcm = np.round(np.clip(np.stack([x, x], axis=1), -1, 32767 / 32768) * 32768).astype("<i2").tobytes()
    command = [sys.executable, "-m", "melos.cli", "sense", "--live", "-", "--rate", str(SR), "--channels", "2"]
    done = subprocess.run(command, input=pcm, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    found = transient_times([json.loads(line) for line in done.stdout.decode().splitlines()])
    assert len(found) == len(TIMES) and np.max(np.abs(found - TIMES)) <= 0.003
    done = subprocess.run(command, input=pcm[:48003], capture_output=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.decode().strip().splitlines() == [
        "melos: error: standard input ended inside a frame: the last 3 bytes are not a whole 2-channel 16-bit "
        "frame (4 bytes)"]
    assert len(done.stdout.decode().splitlines()) > 0  # what came before was streamed


def test_server_keeps_serving_past_a_slow_and_a_departing_client():
    from websockets.asyncio.client import connect

    from melos.sense.live_server import EventServer

    n_events = 400  # of 4 kB of random hex each (~0.8 MB deflated): far more than the slow client's socket holds
    payloads = [np.random.default_rng(i).bytes(2000).hex() for i in range(n_events)]

    async def scenario():
        log = open("/dev/null", "w")
        server = EventServer(0, queue_size=16, log=log)
        await server.start()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small TCP window
        sock.connect(("127.0.0.1", server.port))
        slow = await connect(server.url, sock=sock, max_queue=1, close_timeout=0.1)  # never reads
        normal = await connect(server.url, max_size=None)
        leaving = await connect(server.url, max_size=None)
        while len(server.clients) < 3:
            await asyncio.sleep(0.01)

        def produce():
            for i in range(n_events):
                server.publish_threadsafe({"type": "continuous", "time": i, "pad": payloads[i]})
                threading.Event().wait(0.002)

        producer = threading.Thread(target=produce)
        producer.start()
        received = [json.loads(await normal.recv())["time"] for _ in range(10)]
        await leaving.recv()
        await leaving.close()  # mid-stream
        while len(received) < n_events:
            received.append(json.loads(await asyncio.wait_for(normal.recv(), 10))["time"])
        await asyncio.to_thread(producer.join, 10)
        assert not producer.is_alive()
        counts = {c.name: (c.sent, c.dropped, len(c.queue)) for c in server.clients}
        await server.stop(linger=0.1)
        await normal.close()
        await slow.close()
        log.close()
        return received, counts, server

    received, counts, server = asyncio.run(scenario())
    assert received == list(range(n_events))  # the normal client got every event, in order
    assert len(counts) == 2  # the departed client was let go; the slow one was still connected
    slow_sent, slow_dropped, slow_queued = min(counts.values(), key=lambda c: c[0])
    assert slow_dropped > 0  # one more may be in flight, taken from the queue and waiting on the socket
    assert n_events - 1 <= slow_sent + slow_dropped + slow_queued <= n_events
    assert len(server.report()) == 3


def test_serving_on_a_port_in_use_is_one_error_line(tmp_path, capsys):
    write_clicks(tmp_path / "clicks.wav")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["sense", "--live", str(tmp_path / "clicks.wav"), "--fast", "--serve", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"melos: error: --serve {port}: cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


def run_on_stdin(monkeypatch, capsys, data: bytes, *options: str) -> tuple[int, str, str]:
    """`melos sense --live - --rate SR *options` in this process with `data` on standard input."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    code = main(["sense", "--live", "-", "--rate", str(SR), *options])
    out, err = capsys.readouterr()
    return code, out, err


def test_stdin_that_is_an_audio_file_text_or_empty_is_refused(monkeypatch, capsys):
    x = clicks_and_tones(TIMES[:2], 0.6)
    for fmt in ("WAV", "OGG", "FLAC", "MP3", "AIFF"):  # files as libsndfile writes them
        buffer = io.BytesIO()
        sf.write(buffer, x, SR, format=fmt)
        for data in (buffer.getvalue(), b"ID3\x04\x00\x00\x00\x00\x00\x00" + buffer.getvalue()):
            if fmt != "MP3" and data.startswith(b"ID3"):
                continue
            code, out, err = run_on_stdin(monkeypatch, capsys, data)
            assert code == 2 and out == "" and len(err.splitlines()) == 1, (fmt, err)
            assert err.startswith("melos: error: standard input is a") and "pass the file itself" in err, err
    code, out, err = run_on_stdin(monkeypatch, capsys, b"")
    assert (code, out) == (2, "") and err.startswith("melos: error: standard input is empty")
    code, _, err = run_on_stdin(monkeypatch, capsys, b"time,value\n0.1,3\n" * 50)
    assert code == 2 and err.startswith("melos: error: standard input is text, not raw 16-bit PCM")


def test_pcm_that_starts_like_an_mpeg_frame_by_chance_is_accepted(monkeypatch, capsys):
    rng = np.random.default_rng(2)
    pcm = np.round(0.1 * 32768 * rng.standard_normal(SR // 2)).astype("<i2").tobytes()
    pcm = b"\xff\xfb\x90\x64" + pcm[4:]  # a valid MPEG-1 layer III header (128 kbit/s, 44.1 kHz) ...
    assert pcm[417:419] != b"\xff\xfb"  # ... not followed by another one a frame (417 bytes) later
    code, out, err = run_on_stdin(monkeypatch, capsys, pcm)
    assert code == 0, err
    assert sum(json.loads(line)["type"] == "continuous" for line in out.splitlines()) == 50


def test_pcm_options_out_of_range_are_refused(monkeypatch, capsys):
    for options, message in ((["--channels", "33"], "--channels must be 1-32"),
                             (["--channels", "300"], "--channels must be 1-32"),
                             (["--channels", "0"], "--channels must be 1-32"),
                             (["--max-lag", "-5"], "--max-lag must be 1-60000 ms")):
        code, out, err = run_on_stdin(monkeypatch, capsys, b"\x00" * 4096, *options)
        assert (code, out) == (2, "") and err.startswith(f"melos: error: {message}"), err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(b"\x00" * 100))))
    assert main(["sense", "--live", "-", "--rate", "1000"]) == 2
    assert "--rate must be 8000-192000 Hz" in capsys.readouterr().err


def test_band_flux_is_the_offline_spectral_flux_of_each_band():
    from melos.sense.live_onsets import BandOnsets
    from melos.sense.onsets import spectral_flux

    rng = np.random.default_rng(3)
    freqs = np.arange(513) * SR / 1024
    magnitude = rng.random((513, 40)) ** 4
    magnitude[:, 0] = 2.0  # the loudest frame first: the running maximum is the offline file maximum from there on
    hop = 0.005
    onsets = BandOnsets(freqs, hop, LiveConfig(flux_lag=hop, release=1e12))
    for frame in magnitude.T:
        onsets.update(frame, settled=True)
    for bins, flux in zip(onsets.bins, onsets.flux):
        np.testing.assert_allclose(list(flux)[1:], spectral_flux(magnitude, bins)[1:], rtol=1e-9)


def test_a_steady_tone_flickers_in_the_live_flux_no_more_than_offline():
    """The live window's short tail shows attacks sooner but must not make a held tone look like
    a stream of small onsets: on a steady 29-partial tone (slightly inharmonic, so partials beat)
    the live mid-band flux stays within 0.5-1.25x the offline `spectral_flux` of the same audio
    (measured 0.88x with the 16 ms tail; an 8 ms tail gives 2.6x, which hid attacks over drones)."""
    from melos.sense.features import stft_magnitude
    from melos.sense.onsets import BANDS, band_bins, spectral_flux

    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    tone = 0.1 * sum(np.sin(2 * np.pi * k * 146.8 * (1 + rng.uniform(-2e-3, 2e-3)) * t + rng.uniform(0, 2 * np.pi)) / k
                     for k in range(1, 30))
    s = SenseStream(SR)
    for i in range(0, len(tone), 240):
        s.push(tone[i:i + 240])
    live = np.median(s.onsets.flux[0])  # the mid band's flux over the last second
    offline = spectral_flux(stft_magnitude(tone, 1024, 240), band_bins(BANDS["mid"], 1024, SR))
    ratio = live / np.median(offline[-100:])
    assert 0.5 <= ratio <= 1.25, ratio
