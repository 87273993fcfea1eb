"""Evidence attribution (Synchformer §4.1): chunks and masks, the scores peak where the evidence is
(a model that reads one 0.1 s chunk only), and ``avsync attribute`` end to end on a toy clip."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from avsync.papers.synchformer.attribution.cli import attribute_video, main
from avsync.papers.synchformer.attribution.masks import apply_masks, attribute, chunk_index
from avsync.papers.synchformer.stage2 import SynchformerStage2Module
from avsync.offsets import get_grid

TOY_INPUTS = {"resize_short_side": 32}


@pytest.fixture(scope="module")
def toy_dir(toy_set):
    return next(toy_set("dense", {"test": 2}, seed=0, duration_sec=6.0, size=32).glob("dense_*")) / "test"


@pytest.fixture(scope="module")
def stage2(tmp_path_factory):
    torch.manual_seed(0)
    module = SynchformerStage2Module(arch="synchformer_toy", input_overrides=TOY_INPUTS).eval()
    path = tmp_path_factory.mktemp("stage2") / "stage2.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return module, path


class OneChunkModel(nn.Module):
    """Predicts class ``right`` while chunk ``chunk`` of one stream is the original, class 0 otherwise."""

    def __init__(self, stream: str, original: torch.Tensor, chunk: int, rate: float, right: int, spec=None):
        super().__init__()
        self.stream, self.original, self.right = stream, original, right
        self.units = chunk_index(len(original), rate, 0.1) == chunk
        self.anchor = nn.Parameter(torch.zeros(1))  # a device for attribute_video
        self.input_spec, self.grid = spec, get_grid(21)

    def forward(self, batch: dict) -> torch.Tensor:
        x = batch[self.stream]
        intact = (x[:, self.units] == self.original[self.units]).flatten(1).all(1)
        logits = torch.zeros(len(x), 21)
        logits[intact, self.right] = 1.0
        logits[~intact, 0] = 1.0
        return logits


def test_chunks_are_a_tenth_of_a_second():
    frames, samples = chunk_index(120, 25.0, 0.1), chunk_index(76800, 16000, 0.1)
    assert int(frames[-1]) == 47 and int(samples[-1]) == 47                     # 4.8 s: 48 chunks each
    assert frames[:6].tolist() == [0, 0, 0, 1, 1, 2]                          # 2.5 frames per chunk
    assert torch.equal(torch.bincount(samples), torch.full((48,), 1600))
    x, other = torch.zeros(10), torch.ones(10)
    masks = torch.tensor([[True, False], [False, True]])
    mixed = apply_masks(x, other, masks, chunk_index(10, 50.0, 0.1))           # 5 units per chunk
    assert mixed.tolist() == [[1.0] * 5 + [0.0] * 5, [0.0] * 5 + [1.0] * 5]


@pytest.mark.parametrize("modality", ["audio", "visual"])
def test_attribution_peaks_at_the_only_chunk_the_model_reads(modality):
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (120, 4, 4, 3), generator=g, dtype=torch.uint8)
    wav = torch.randn(76800, generator=g)
    distractor = (torch.randint(0, 256, (120, 4, 4, 3), generator=g, dtype=torch.uint8), torch.randn(76800, generator=g))
    stream, rate = ("audio", 16000.0) if modality == "audio" else ("video", 25.0)
    model = OneChunkModel(stream, wav if modality == "audio" else frames, chunk=31, rate=rate, right=12)
    result = attribute(lambda v, a: model({"video": v, "audio": a}), frames, wav, [distractor], modality=modality,
                       fps=25.0, sample_rate=16000, target_class=12, num_masks=300, batch_size=50)
    assert int(np.argmax(result.scores)) == 31 and result.scores[31] == 1.0   # every kept mask left it alone
    others = np.delete(result.scores, 31)
    assert 0.4 < others.mean() < 0.6 and others.max() < 0.8                   # the rest: ≈ 0.5
    assert 100 < result.kept < 200                                            # ≈ half the masks keep it
    assert result.scaled()[31] == 1.0 and result.scaled().min() == 0.0
    # a target the model never predicts keeps no mask: no scores rather than made-up ones
    none = attribute(lambda v, a: model({"video": v, "audio": a}), frames, wav, [distractor], modality=modality,
                     fps=25.0, sample_rate=16000, target_class=5, num_masks=20)
    assert none.kept == 0 and np.isnan(none.scores).all()


def test_attribute_video_finds_the_chunk_on_a_toy_clip(toy_dir, stage2):
    spec = stage2[0].input_spec
    clip, other = toy_dir / "test_00000.mp4", toy_dir / "test_00001.mp4"
    from avsync.papers.synchformer.attribution.cli import model_crop
    from avsync.detect.decoding import decode_for_model

    _, wav = model_crop(*decode_for_model(clip, spec), spec, 1.0, clip)
    model = OneChunkModel("audio", wav, chunk=20, rate=spec.sample_rate, right=14, spec=spec)
    out = attribute_video(model, clip, [other], start_sec=1.0, num_masks=120, batch_size=40)
    assert out["record"]["predicted_offset_sec"] == pytest.approx(get_grid(21).seconds_of(14))
    assert int(np.argmax(out["audio"].scores)) == 20 and out["audio"].scores[20] == 1.0
    assert out["visual"].kept == 120                                          # the picture is never read


def test_attribute_cli_writes_json_png_and_tensorboard(toy_dir, stage2, tmp_path, capsys):
    clip = toy_dir / "test_00000.mp4"
    rc = main(["--ckpt", str(stage2[1]), str(clip), "--distractor", str(toy_dir / "test_00001.mp4"), "--masks", "8",
               "--out", str(tmp_path / "out"), "--tb-logdir", str(tmp_path / "tb")])
    assert rc == 0
    record = json.loads((tmp_path / "out" / "test_00000.json").read_text())
    for m in ("audio", "visual"):
        assert len(record[m]["scores"]) == 48 and record[m]["chunk_start_sec"][1] == pytest.approx(0.1)
        assert record[m]["num_masks"] == 8
    assert (tmp_path / "out" / "test_00000.png").stat().st_size > 10_000
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert "evidence peaks at" in capsys.readouterr().out


def test_bad_file_gives_one_line_naming_it(stage2, tmp_path, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    assert main(["--ckpt", str(stage2[1]), str(bad), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and err.startswith("avsync attribute:")
    assert main(["--ckpt", str(tmp_path / "missing.ckpt"), str(bad)]) == 2
    assert "missing.ckpt" in capsys.readouterr().err
