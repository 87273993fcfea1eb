"""The dataset class of each clip travels in the batch (``class_index``): VGGSound's label index,
the toy sparse set's event-count class, −1 for data without classes."""
import csv
import json

from avsync.data_modules import ToyAVDataModule, VGGSoundSparseDataModule
from avsync.data_modules.toy import SPARSE_EVENT_CLASSES, sparse_event_class
from test_dataset_layouts import clip25, common, place  # noqa: F401  (fixture and helpers)


def test_vggsound_items_carry_their_class_index(clip25, tmp_path):  # noqa: F811
    clips = tmp_path / "vgg"
    place(clip25, clips, "aaaaaaaaaaa_0_10000.mp4", "bbbbbbbbbbb_0_10000.mp4")
    meta = tmp_path / "vggsound.csv"
    with open(meta, "w", newline="") as f:
        csv.writer(f).writerows([("aaaaaaaaaaa", 0, "lions roaring", "test"),
                                 ("bbbbbbbbbbb", 0, "dog barking", "test")])
    dm = VGGSoundSparseDataModule(root=str(clips), meta_csv=str(meta), **common(tmp_path))
    dm.setup("test")
    ds = dm.datasets["test"]
    labels = {ds.record_of(i).key: dm.classes[ds[i]["class_index"]] for i in range(len(ds))}
    assert labels == {"aaaaaaaaaaa_0_10000": "lions roaring", "bbbbbbbbbbb_0_10000": "dog barking"}


def test_toy_sparse_clips_are_classed_by_their_number_of_events(tmp_path):
    set_dir = tmp_path / "toy"
    dm = ToyAVDataModule(variant="sparse", root=str(set_dir), num_test=5)
    folder = dm.set_dir / "test"
    folder.mkdir(parents=True)
    rows = []
    for i, n_events in enumerate((0, 1, 3, 5, 9)):
        (folder / f"c{i}.json").write_text(json.dumps({"event_times": [0.5] * n_events}))
        rows.append({"path": f"test/c{i}.mp4", "split": "test", "duration_sec": 10.0, "variant": "sparse"})
    with open(dm.set_dir / "index.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    names = [SPARSE_EVENT_CLASSES[r.extra["class_index"]] for r in dm.list_records("test")]
    assert names == ["0-1 events", "0-1 events", "3 events", "5+ events", "5+ events"]
    assert dm.classes == list(SPARSE_EVENT_CLASSES)
    assert ToyAVDataModule(variant="dense").classes == []
    assert sparse_event_class(tmp_path / "missing.json") is None
