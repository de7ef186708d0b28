"""Probing task files: parsing, vocabularies, label encoding, and errors that name the row."""

import json

import pytest
import torch

from melos.evaluation.tasks import load_task


def write_task(tmp_path, rows, **spec):
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    spec = {"name": "t", "type": "multiclass", "manifest": "data/m.jsonl", "window": 30, **spec}
    (tmp_path / "task.yaml").write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in spec.items()))
    return tmp_path / "task.yaml"


def rows(labels_by_split):
    return [{"path": f"{s}{i}.wav", "split": s, "labels": l}
            for s, ls in labels_by_split.items() for i, l in enumerate(ls)]


def test_multilabel_top_k_counted_on_train_with_alphabetical_ties(tmp_path):
    task = load_task(write_task(tmp_path, rows({
        "train": [["rock", "guitar"], ["rock", "drums"], ["piano", "drums"], ["guitar"]],
        "valid": [["rock"]], "test": [["piano", "flute"]]}), type="multilabel", top_k=3))
    assert task.vocabulary == ["drums", "guitar", "rock"]  # 2, 2, 2 -> alphabetical; piano (1) out
    assert torch.equal(task.encode(task.split("test")), torch.tensor([[0.0, 0.0, 0.0]]))
    assert torch.equal(task.encode(task.split("train"))[0], torch.tensor([0.0, 1.0, 1.0]))
    assert task.items[0].path == str(tmp_path / "data" / "train0.wav")


def test_multiclass_key_and_regression_encoding(tmp_path):
    task = load_task(write_task(tmp_path, rows({"train": ["b", "a"], "valid": ["a"], "test": ["b"]})))
    assert task.vocabulary == ["a", "b"] and task.encode(task.split("train")).tolist() == [1, 0]
    key = load_task(write_task(tmp_path, rows({"train": ["C major", "A minor"], "valid": ["X"],
                                               "test": ["C# minor"]}), type="key"))
    assert key.encode(key.split("train")).tolist() == [0, 21] and key.encode(key.split("valid")).tolist() == [24]
    reg = load_task(write_task(tmp_path, rows({"train": [[0.5, 1]], "valid": [[1, 2]], "test": [[3, 4]]}),
                               type="regression", targets=["arousal", "valence"]))
    assert reg.encode(reg.split("train")).tolist() == [[0.5, 1.0]]


@pytest.mark.parametrize("labels, spec, message", [
    ({"train": ["a"], "valid": ["a"], "test": []}, {}, "'test' split is missing or empty"),
    ({"train": ["a"], "valid": ["a"], "test": ["zzz"]}, {"vocabulary": ["a"]},
     r"item 3 \(.*test0.wav\): label 'zzz' is not in the vocabulary"),
    ({"train": [["a"]], "valid": [["a"]], "test": [["a", "zzz"]]}, {"type": "multilabel", "vocabulary": ["a"]},
     r"item 3 \(.*test0.wav\): label\(s\) \['zzz'\] not in the vocabulary"),
    ({"train": ["a"], "valid": ["a"], "test": ["zzz"]}, {}, "'test' split is empty once labels that no training"),
    ({"train": [[1.0]], "valid": [[float("nan")]], "test": [[1.0]]}, {"type": "regression"}, "finite numbers"),
    ({"train": ["H major"], "valid": ["X"], "test": ["X"]}, {"type": "key"}, "not a mir_eval key name"),
    ({"train": ["a"], "valid": ["a"], "test": ["a"]}, {"type": "ranking"}, "type must be one of"),
])
def test_bad_tasks_name_the_problem(tmp_path, labels, spec, message):
    with pytest.raises(ValueError, match=message):
        load_task(write_task(tmp_path, rows(labels), **spec))


def test_labels_no_training_item_has_are_dropped_and_reported(tmp_path, caplog):
    task = load_task(write_task(tmp_path, rows({
        "train": [["rock"], ["jazz", "rock"]], "valid": [["rock", "culture-x"], ["jazz"]],
        "test": [["culture-x"], ["culture-x", "rock", "rare"], ["jazz"]]}), type="multilabel"))
    assert task.vocabulary == ["jazz", "rock"]
    assert task.dropped_labels == {"valid": {"culture-x": 1}, "test": {"culture-x": 2, "rare": 1}}
    assert [item.labels for item in task.split("test")] == [[], ["rock"], ["jazz"]]  # no test item is lost
    assert torch.equal(task.encode(task.split("test")), torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2 and "test split" in warnings[1] and "'culture-x' (2), 'rare' (1)" in warnings[1]

    multiclass = load_task(write_task(tmp_path, rows({"train": ["a", "b"], "valid": ["a"], "test": ["b", "c", "c"]})))
    assert [item.labels for item in multiclass.split("test")] == ["b"]
    assert multiclass.dropped_labels == {"test": {"c": 2}}
