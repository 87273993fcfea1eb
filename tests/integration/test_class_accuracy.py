"""Accuracy per dataset class: the metric, its DDP-style merge, the test-time breakdown of the grid
classifiers and AVST (TensorBoard bars + numbers for the runner), and the classes the data carry."""
import json

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from avsync.evaluation.class_accuracy import ClassOffsetAccuracy, breakdown, dataset_classes
from avsync.inputs import InputSpec
from avsync.papers.avst.module import AVSTModule
from avsync.evaluation.class_plots import per_class_figure
from avsync.modules.offset_classification import OffsetClassificationModule
from avsync.evaluation.metrics import OffsetAccuracy

OFFSETS = [-0.4, -0.2, 0.0, 0.2, 0.4]


def test_hits_are_counted_per_class_with_the_metric_tolerance():
    metric = ClassOffsetAccuracy(OFFSETS, ["dog", "cat", "car"], classes=1)
    preds = torch.tensor([2, 3, 0, 4, 1, 2])
    target = torch.tensor([2, 2, 3, 4, 1, 0])
    metric.update(preds, target, classes=torch.tensor([0, 0, 1, 2, 2, -1]))
    r = metric.compute()
    assert r["per_class_count"].tolist() == [2, 1, 2]  # the -1 clip counts overall only
    assert r["per_class_acc@1"].tolist() == [0.5, 0.0, 1.0]
    assert r["per_class_acc_tol"].tolist() == [1.0, 0.0, 1.0]
    assert r["acc@1"].item() == pytest.approx(3 / 6)  # the overall numbers are OffsetAccuracy's
    plain = OffsetAccuracy(OFFSETS, classes=1)
    plain.update(preds, target)
    assert torch.equal(plain.compute()["per_offset_acc_tol"].nan_to_num(-1), r["per_offset_acc_tol"].nan_to_num(-1))


def test_seconds_path_and_bad_class_indices():
    metric = ClassOffsetAccuracy(OFFSETS, ["a", "b"], window_ms=(-125, 45))
    metric.update(pred_sec=torch.tensor([0.0, 0.2]), true_sec=torch.tensor([0.1, 0.2]), classes=torch.tensor([1, 1]))
    r = metric.compute()  # the first leaves the audio leading by 100 ms: outside (-125, 45)
    assert r["per_class_acc_tol"][1].item() == 0.5 and r["per_class_count"].tolist() == [0, 2]
    with pytest.raises(ValueError, match="class indices"):
        metric.update(torch.tensor([0]), torch.tensor([0]), classes=torch.tensor([2]))
    with pytest.raises(ValueError, match="entries"):
        metric.update(torch.tensor([0, 1]), torch.tensor([0, 1]), classes=torch.tensor([0]))
    with pytest.raises(ValueError, match="integer"):
        metric.update(torch.tensor([0]), torch.tensor([0]), classes=torch.tensor([0.5]))
    with pytest.raises(ValueError, match="empty"):
        ClassOffsetAccuracy(OFFSETS, [], classes=1)


def test_shards_merged_as_under_ddp_equal_one_process():
    torch.manual_seed(0)
    preds, target = torch.randint(0, 5, (40,)), torch.randint(0, 5, (40,))
    classes = torch.randint(-1, 4, (40,))
    whole = ClassOffsetAccuracy(OFFSETS, list("wxyz"), classes=1)
    whole.update(preds, target, classes=classes)
    shards = [ClassOffsetAccuracy(OFFSETS, list("wxyz"), classes=1) for _ in range(2)]
    for rank, shard in enumerate(shards):
        shard.update(preds[rank::2], target[rank::2], classes=classes[rank::2])
    shards[0].merge_state(shards[1])  # what the "sum" reduction does across ranks
    a, b = whole.compute(), shards[0].compute()
    for key in ("per_class_count", "per_class_acc@1", "per_class_acc_tol", "confusion"):
        assert torch.equal(a[key].nan_to_num(-1), b[key].nan_to_num(-1)), key


def test_breakdown_is_json_ready_and_the_figure_sorts_the_classes():
    metric = ClassOffsetAccuracy(OFFSETS, ["low", "high", "absent"], classes=0)
    metric.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 0, 2, 2]), classes=torch.tensor([0, 0, 1, 1]))
    data = json.loads(json.dumps(breakdown(metric, metric.compute())))
    assert data["classes"] == ["low", "high", "absent"]
    assert data["per_class"]["acc@1"] == [0.5, 1.0, None] and data["per_class"]["count"] == [2, 2, 0]
    assert data["per_offset"]["count"] == [2, 0, 2, 0, 0] and data["per_offset"]["acc@1"][1] is None
    fig = per_class_figure(data["classes"], data["per_class"]["acc_tol"], data["per_class"]["acc@1"],
                           data["per_class"]["count"])
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["high (2)", "low (2)"], labels  # best first, the class without clips left out
    plain = OffsetAccuracy(OFFSETS, classes=1)
    plain.update(torch.tensor([1]), torch.tensor([1]))
    assert "per_class" not in breakdown(plain, plain.compute())


class _Wrapper:  # a data module wrapping another, as the feature bank does
    def __init__(self, source):
        self.source = source


def test_dataset_classes_look_through_wrappers():
    inner = type("DM", (), {"classes": ["a", "b"]})()
    assert dataset_classes(_Wrapper(inner)) == ["a", "b"]
    assert dataset_classes(_Wrapper(type("DM", (), {"classes": []})())) == [] and dataset_classes(None) == []


# -- the grid classifiers' test: bars in TensorBoard, numbers in test_breakdown ------------------------------
class _Lookup(nn.Module):
    """Predicts the offset class written in the first pixel of the clip."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, video):
        return nn.functional.one_hot(video[:, 0, 0, 0, 0].long(), 3).float() * 10 + self.bias


class _TinyGrid(OffsetClassificationModule):
    def __init__(self):
        super().__init__(num_classes=3, lr=1e-3, tolerance_classes=0)
        self.net, self.input_spec = _Lookup(), InputSpec(offset_classes=3)

    def model_inputs(self, batch):
        return (batch["video"],)


class _ClassData(L.LightningDataModule):
    """Clips of class 0 carry their true offset in the first pixel (right), of class 1 the next one (wrong)."""

    classes = ["guitar", "drum"]

    def test_dataloader(self):
        items = []
        for i in range(8):
            target, cls = i % 3, i % 2
            guess = target if cls == 0 else (target + 1) % 3
            items.append({"video": torch.full((1, 1, 1, 1), guess, dtype=torch.uint8),
                          "target": torch.tensor(target), "class_index": cls})
        return DataLoader(items, batch_size=4)


def test_grid_classifier_test_logs_per_class_bars_and_keeps_the_numbers(tmp_path):
    module = _TinyGrid()
    logger = L.pytorch.loggers.TensorBoardLogger(tmp_path)
    figures = []
    logger.experiment.add_figure = lambda tag, fig, **k: figures.append(tag)
    trainer = L.Trainer(logger=logger, enable_progress_bar=False, enable_checkpointing=False, accelerator="cpu")
    trainer.test(module, datamodule=_ClassData(), verbose=False)
    per_class = module.test_breakdown["per_class"]
    assert module.test_breakdown["classes"] == ["guitar", "drum"]
    assert per_class["count"] == [4, 4] and per_class["acc@1"] == [1.0, 0.0]
    assert "test/per_class_accuracy" in figures
    # without classes in the data module the test still runs, with the plain metric and no bars
    figures.clear()
    plain = type("Plain", (_ClassData,), {"classes": []})()
    trainer.test(module, datamodule=plain, verbose=False)
    assert type(module.evaluators["test"].headline) is OffsetAccuracy and "per_class" not in module.test_breakdown
    assert "test/per_class_accuracy" not in figures


def test_avst_evaluation_counts_each_window_for_its_clip_class():
    module = AVSTModule(arch="avst_enc_mp_toy", eval_windows=2, tolerance_frames=0)
    spec = module.input_spec
    module.pair_scores = lambda frames, wav: -(torch.arange(frames.shape[0]) % 31 - 15).abs().float()  # says 0
    module.log = lambda *a, **k: None
    module.evaluators["test"] = module.build_evaluator("test", ["speech", "music"])
    batch = {"video": torch.zeros(2, spec.num_frames, 64, 64, 3, dtype=torch.uint8),
             "audio": torch.zeros(2, spec.num_samples), "target": torch.tensor([0, 3]),
             "class_index": torch.tensor([1, 0])}
    module._eval_step(batch, "test", 1)
    module.keep_breakdown()
    per_class = module.test_breakdown["per_class"]
    assert per_class["count"] == [2, 2] and per_class["acc@1"] == [0.0, 1.0]
