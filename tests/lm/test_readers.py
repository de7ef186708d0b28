"""Each reader on a tiny copy of its dataset's layout; audio files are only touched (none is read)."""

import csv
import json
import logging
import re

import pytest

from melos.lm.readers import READERS, read_lp_musiccaps, read_musiccaps, read_musicinstruct, read_musicqa
from melos.lm.rows import AUDIO, CAPTION_PROMPTS, audio_split, check_audio, read_rows

MUSICCAPS_COLUMNS = ["ytid", "start_s", "end_s", "audioset_positive_labels", "aspect_list", "caption", "author_id",
                     "is_balanced_subset", "is_audioset_eval"]


def _musiccaps(folder, rows):
    path = folder / "musiccaps-public.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MUSICCAPS_COLUMNS)
        writer.writerows(rows)
    return path


def _caption(row):
    before, prompt = audio_split(row.turns[0].user)
    assert before == "" and prompt.strip() in CAPTION_PROMPTS
    return row.turns[0].assistant


def test_musiccaps(tmp_path, caplog):
    path = _musiccaps(tmp_path, [
        ["-0Gj8-vB1q4", "30", "40", "/m/0140xf", "['low quality', 'piano']", "A piano, slowly.\nThen drums.", "4",
         "False", "False"],
        ["-0SdAVK79lg", "0", "10", "/m/04rlf", "['rock']", "Loud guitars.", "0", "True", "True"]])
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "-0Gj8-vB1q4.wav").touch()
    rows = read_musiccaps(path, tmp_path / "audio")
    assert [r.id for r in rows] == ["musiccaps/-0Gj8-vB1q4", "musiccaps/-0SdAVK79lg"]
    assert [r.split for r in rows] == ["train", "test"] and {r.source for r in rows} == {"musiccaps"}
    assert _caption(rows[0]) == "A piano, slowly.\nThen drums." and rows[0].offset == 0 and rows[0].duration == 10
    assert rows[0].audio == str(tmp_path / "audio" / "-0Gj8-vB1q4.wav")
    assert check_audio(rows) == [f"musiccaps/-0SdAVK79lg: missing audio {rows[1].audio}"]
    assert [r.id for r in read_musiccaps(path, tmp_path / "audio", split="test")] == ["musiccaps/-0SdAVK79lg"]

    with caplog.at_level(logging.WARNING):
        kept = read_musiccaps(path, tmp_path / "audio", skip_missing=True)
    assert [r.id for r in kept] == ["musiccaps/-0Gj8-vB1q4"]
    assert [m for m in caplog.messages if "skipped 1 of 2" in m]

    whole = read_musiccaps(path, tmp_path, pattern="[{ytid}]-[{start_s}-{end_s}].wav", clipped=False)
    assert whole[0].audio == str(tmp_path / "[-0Gj8-vB1q4]-[30-40].wav") and whole[0].offset == 30


@pytest.mark.parametrize("row, message", [
    (["id1", "0", "10", "", "[]", "", "0", "False", "False"], "missing or empty 'caption'"),
    (["id1", "x", "10", "", "[]", "c", "0", "False", "False"], "'start_s' is not a number"),
    (["id1", "10", "10", "", "[]", "c", "0", "False", "False"], "not after start_s"),
])
def test_musiccaps_errors(tmp_path, row, message):
    path = _musiccaps(tmp_path, [["ok", "0", "10", "", "[]", "fine", "0", "False", "False"], row])
    with pytest.raises(ValueError, match=message) as error:
        read_musiccaps(path, tmp_path)
    assert str(error.value).startswith(f"{path}: row 2: ")
    with pytest.raises(ValueError, match="names a missing field 'nope'"):
        read_musiccaps(path, tmp_path, pattern="{nope}.wav")


def _conversation(*texts):
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": t} for i, t in enumerate(texts)]


def test_musicqa(tmp_path):
    path = tmp_path / "EvalMusicQA.json"
    path.write_text(json.dumps([
        {"audio_name": "000001.wav", "conversation": _conversation("Describe the audio", "A calm track.")},
        {"audio_name": "000001.wav", "conversation": _conversation("Tempo?", "Slow.", "Key?", "D minor.")}]))
    rows = read_musicqa(path, tmp_path / "audios")
    assert [r.id for r in rows] == ["musicqa/EvalMusicQA/1", "musicqa/EvalMusicQA/2"]
    assert {r.split for r in rows} == {"test"} and rows[0].audio == str(tmp_path / "audios" / "000001.wav")
    assert [(t.user, t.assistant) for t in rows[1].turns] == [("Tempo?", "Slow."), ("Key?", "D minor.")]
    assert AUDIO not in rows[0].turns[0].user  # the audio goes before the text
    train = tmp_path / "FinetuneMusicQA.json"
    train.write_text(path.read_text())
    assert {r.split for r in read_musicqa(train, tmp_path)} == {"train"}
    assert read_musicqa(train, tmp_path, split="test") == []

    path.write_text(json.dumps([{"audio_name": "a.wav", "conversation": _conversation("Q", "A")},
                                {"audio_name": "b.wav", "conversation": _conversation("Q", "A", "Q2")}]))
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: entry 2: 'conversation' must alternate"):
        read_musicqa(path, tmp_path)
    path.write_text(json.dumps([{"conversation": _conversation("Q", "A")}]))
    with pytest.raises(ValueError, match="entry 1: missing or empty 'audio_name'"):
        read_musicqa(path, tmp_path)
    path.write_text(json.dumps([{"audio_name": "a.wav", "conversation": _conversation("Q", " ")}]))
    with pytest.raises(ValueError, match="entry 1: .*empty answer"):
        read_musicqa(path, tmp_path)


def test_musicinstruct(tmp_path):
    path = tmp_path / "music_instruct.json"
    qa = [{"ytid": "abc", "question": "What is the mood?", "answer": "Melancholic.", "is_audioset_eval": False,
           "sampling_rate": 48000},
          {"ytid": "def", "question": "Which instruments?", "answer": "Sitar.", "is_audioset_eval": True}]
    path.write_text(json.dumps({"QA": qa}))
    rows = read_musicinstruct(path, tmp_path)
    assert [(r.id, r.split, r.audio) for r in rows] == [
        ("musicinstruct/music_instruct/1", "train", str(tmp_path / "abc.wav")),
        ("musicinstruct/music_instruct/2", "test", str(tmp_path / "def.wav"))]
    assert rows[0].turns[0].user == "What is the mood?" and rows[0].turns[0].assistant == "Melancholic."
    assert read_musicinstruct(path, tmp_path, pattern="{ytid}.npy", split="test")[0].audio == str(tmp_path / "def.npy")
    path.write_text(json.dumps({"QA": qa + [{"ytid": "x", "question": "Q?"}]}))
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: entry 3: missing or empty 'answer'"):
        read_musicinstruct(path, tmp_path)


def test_lp_musiccaps(tmp_path):
    msd = tmp_path / "test.jsonl"
    msd.write_text("\n".join(json.dumps({
        "track_id": f"TR{i}", "tag": ["rock"], "caption_writing": f"Written {i}.", "caption_summary": f"Summary {i}.",
        "caption_paraphrase": "p", "caption_attribute_prediction": "a", "path": f"8/1/{i}.clip.mp3"}) for i in range(2)))
    rows = read_lp_musiccaps(msd, tmp_path / "msd")
    assert [(r.id, r.split, _caption(r)) for r in rows] == [("lp-musiccaps/TR0", "test", "Written 0."),
                                                          ("lp-musiccaps/TR1", "test", "Written 1.")]
    assert rows[0].audio == str(tmp_path / "msd" / "8" / "1" / "0.clip.mp3")
    assert _caption(read_lp_musiccaps(msd, tmp_path, caption_field="caption_summary")[1]) == "Summary 1."
    with pytest.raises(ValueError, match="caption_field"):
        read_lp_musiccaps(msd, tmp_path, caption_field="caption")

    mc = tmp_path / "mc.csv"
    with open(mc, "w", newline="") as f:
        writer = csv.DictWriter(f, ["fname", "ytid", "caption_ground_truth", "caption_writing", "is_audioset_eval"])
        writer.writeheader()
        writer.writerow({"fname": "[a]-[30-40]", "ytid": "a", "caption_ground_truth": "Truth.",
                         "caption_writing": "W.", "is_audioset_eval": "True"})
        writer.writerow({"fname": "[b]-[0-10]", "ytid": "b", "caption_ground_truth": "",
                         "caption_writing": "W.", "is_audioset_eval": "False"})
    rows = read_lp_musiccaps(mc, tmp_path, pattern="{ytid}.wav")
    assert [(r.id, r.split, r.audio) for r in rows] == [("lp-musiccaps/[a]-[30-40]", "test", str(tmp_path / "a.wav")),
                                                      ("lp-musiccaps/[b]-[0-10]", "train", str(tmp_path / "b.wav"))]
    assert read_lp_musiccaps(mc, tmp_path)[0].audio == str(tmp_path / "[a]-[30-40].wav")
    with pytest.raises(ValueError, match=f"^{re.escape(str(mc))}: row 2: missing or empty 'caption_ground_truth'"):
        read_lp_musiccaps(mc, tmp_path, caption_field="caption_ground_truth")

    (tmp_path / "x.txt").touch()
    with pytest.raises(ValueError, match="unsupported file type"):
        read_lp_musiccaps(tmp_path / "x.txt", tmp_path)


def test_parquet_tables_read_as_their_json_twins(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    entries = [{"track_id": "T1", "caption_writing": "A slow oud solo.", "path": "t1.mp3"},
               {"track_id": "T2", "caption_writing": "Fast drums.", "path": "t2.mp3"}]
    pq.write_table(pa.Table.from_pylist(entries), tmp_path / "train-00000-of-00001.parquet")
    (tmp_path / "train.json").write_text(json.dumps(entries))  # same split from the same name prefix
    rows = read_lp_musiccaps(tmp_path / "train-00000-of-00001.parquet", tmp_path)
    assert rows == read_lp_musiccaps(tmp_path / "train.json", tmp_path)
    assert [(r.id, r.split) for r in rows] == [("lp-musiccaps/T1", "train"), ("lp-musiccaps/T2", "train")]


def test_registry_and_repeated_ids(tmp_path):
    assert set(READERS) == {"musiccaps", "musicqa", "musicinstruct", "lp-musiccaps"}
    path = tmp_path / "train.json"
    path.write_text(json.dumps([{"track_id": "T", "caption_writing": "a", "path": "t.mp3"}] * 2))
    with pytest.raises(ValueError, match="entry 2: id 'lp-musiccaps/T' repeats entry 1"):
        READERS["lp-musiccaps"](path, tmp_path)


def test_cli_rows_leave_out_the_benchmarks_clips(tmp_path, capsys):
    from melos.cli import main

    path = _musiccaps(tmp_path, [
        ["-0Gj8-vB1q4", "30", "40", "/m/0140xf", "['piano']", "A piano.", "4", "False", "False"],
        ["-0SdAVK79lg", "0", "10", "/m/04rlf", "['rock']", "Loud guitars.", "0", "False", "False"]])
    benchmark = tmp_path / "muchomusic.csv"  # one question on the second clip, in MuChoMusic's own naming
    with open(benchmark, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "correct_answer", "distractor_1_answer", "distractor_2_answer",
                         "distractor_3_answer", "dataset", "dataset_identifier", "music_knowledge", "music_reasoning"])
        writer.writerow(["What plays?", "guitars", "piano", "flute", "voice", "musiccaps", "-0SdAVK79lg_0.json",
                         "[]", "[]"])
    out = tmp_path / "rows.jsonl"
    assert main(["lm", "rows", "musiccaps", str(path), "--audio-root", str(tmp_path), "--out", str(out),
                 "--exclude", str(benchmark)]) == 0
    assert [r.id for r in read_rows(out)] == ["musiccaps/-0Gj8-vB1q4"]
    assert "1 on the excluded benchmark's clips left out" in capsys.readouterr().out
