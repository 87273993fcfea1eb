"""Synchformer against the authors' code: the same weights and the same mp4 give the same outputs.

Goldens (``tests/goldens/synchformer_*``): the AUTHORS' synchronisation model (``configs/sync.yaml``,
Motionformer + AST + sync transformer, 21 classes) and synchronizability model
(``configs/ft_synchability.yaml``, 13 segments, 2-way head) on the real LRS3 clip prepared by their
test transforms (``tests/parity/make_goldens_synchformer.py``; see ``reproductions/synchformer/README.md``,
"Parity with the authors' code"). Here: the same synthetic state dicts regenerated from the committed
key lists, ``avsync.papers.synchformer.convert`` (strict load), avsync's LRS3 data module at the clip's
official fixed offset and :class:`~avsync.papers.synchformer.network.SegmentInputs`.

The authors' test transform takes the 14 half-overlapping segments (4.8 s) from the middle of its
5 s crop ("--CCCC--": 2 frames / 1,280 samples in); the test decodes the 5 s window and cuts the same
span. The synchronizability model reads the first 13 segments of the same input; avsync's extractors
work per segment, so its first 13 segments' features are those of the 14-segment pass.

Slow (two full-size forward passes of 237M-parameter models on the CPU, about two minutes each).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from avsync.papers.synchformer.convert import load_official, load_official_synchronizability
from avsync.convert.synthetic_weights import read_layout, synthetic_state_dict
from avsync.data_modules.lrs3 import LRS3DataModule
from avsync.papers.synchformer.network import SYNCHFORMER_CONFIGS, SegmentInputs

from parity.compare import DEVICE, golden_test_batch, load_golden, rel  # noqa: E402
from support.input_specs import PAPER_SPEC

pytestmark = [pytest.mark.slow, pytest.mark.parity]

GOLDENS = Path(__file__).resolve().parents[1] / "goldens"
REL_TOL = 1e-4
SEGMENTS, STEP = 14, 0.5


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def golden() -> dict:
    return load_golden(GOLDENS, "synchformer_golden")


@pytest.fixture(scope="module")
def clip(real_fixtures, golden, tmp_path_factory):
    """The 4.8 s the authors' segments cover, decoded by avsync's LRS3 data module (5 s at the fixed offset)."""
    tmp = tmp_path_factory.mktemp("lrs3")
    (tmp / "test.txt").write_text(golden["key"] + "\n")
    spec = PAPER_SPEC
    dm = LRS3DataModule(root=str(real_fixtures / "lrs3"), variant="full_frame", split_files={"test": str(tmp / "test.txt")},
                        fixed_offsets_csv={"test": str(real_fixtures / "metadata" / "lrs3_test_fixed_offsets_size21_crop5.csv")},
                        input_spec=spec, batch_size=1, num_workers=0, probe_cache_dir=str(tmp / "cache"))
    batch = golden_test_batch(dm, golden)
    v0, a0 = golden["segments_start_in_crop_frames"], golden["segments_start_in_crop_samples"]
    assert (v0, a0) == (2, 1280)  # (125 - 120) // 2 frames, and the same time in samples
    return batch["video"][:, v0: v0 + 120], batch["audio"][:, a0: a0 + 76800]


@pytest.fixture(scope="module")
def inputs(clip):
    frames, audio = clip
    net_inputs = SegmentInputs(SYNCHFORMER_CONFIGS["synchformer"])
    return net_inputs.video(frames, SEGMENTS, STEP), net_inputs.audio(audio, SEGMENTS, STEP)


@pytest.fixture(scope="module")
def features(inputs):
    """avsync's converted sync model: extractor features of all 14 segments and the offset logits."""
    model = load_official(synthetic_state_dict(read_layout(GOLDENS / "synchformer_layout.json"))).eval().to(DEVICE)
    with torch.no_grad():
        vis, aud = model.features(*(x.to(DEVICE) for x in inputs))
        logits = model.sync(vis, aud)
    return {"vis": vis.cpu(), "aud": aud.cpu(), "logits": logits.cpu()}


def test_decoded_span_is_bitwise_the_authors(clip, golden):
    frames, audio = clip
    ours = frames[0].permute(0, 3, 1, 2).contiguous().numpy()  # (120, 3, 224, 224) as the authors'
    assert list(ours.shape) == golden["frames_shape"].tolist()
    np.testing.assert_array_equal(ours[int(golden["frame_kept_index"])], golden["frame_kept"])
    assert sha256(ours) == str(golden["frames_sha256"])
    # two-channel AAC averaged to mono, on the same samples
    np.testing.assert_array_equal(audio[0].numpy(), golden["audio"])


def test_segment_inputs_equal_the_authors(inputs, golden):
    video, mel = inputs
    # the authors' frames are half precision (RGBToHalfToZeroOne, then mean = std = 0.5 in half):
    # avsync's segments, (S, 3, 16, H, W) in float32, hold exactly those values
    ours = video[0].permute(0, 2, 1, 3, 4).contiguous()  # (S, 16, 3, H, W) as the authors'
    assert list(ours.shape) == golden["video_input_shape"].tolist()
    assert torch.equal(ours.half().float(), ours)
    assert sha256(ours.half().numpy()) == str(golden["video_input_sha256"])
    # log-mel segments: stored in float16, so equal within float16 rounding (2^-11 relative)
    theirs = golden["audio_input_fp16"].astype(np.float32)  # (S, 128, 66)
    ours = mel[0].transpose(-1, -2).numpy()
    assert ours.shape == theirs.shape == (SEGMENTS, 128, 66)
    assert np.all(np.abs(ours - theirs) <= 2.0 ** -11 * np.abs(theirs) + 1e-7)
    assert mel.double().mean().item() == pytest.approx(float(golden["audio_input_mean"]), abs=1e-6)
    assert mel.double().std().item() == pytest.approx(float(golden["audio_input_std"]), rel=1e-6)


def test_extractor_features_and_offset_logits_equal_the_authors(features, golden):
    assert rel(features["vis"][0, 0], golden["vfeat_seg0"]) < REL_TOL  # Motionformer + spatial aggregation
    assert rel(features["aud"][0, 0], golden["afeat_seg0"]) < REL_TOL  # AST + frequency aggregation
    assert rel(features["logits"][0], golden["logits"]) < REL_TOL
    assert features["logits"][0].argmax().item() == int(golden["logits"].argmax())


def test_synchronizability_equals_the_authors(features, golden):
    state = synthetic_state_dict(read_layout(GOLDENS / "synchformer_synchronizability_layout.json"))
    net, head = load_official_synchronizability(state)
    net, head = net.eval().to(DEVICE), head.eval().to(DEVICE)
    s = golden["synchronizability_segments"]
    with torch.no_grad():
        logit = head(net.sync_token(features["vis"][:, :s].to(DEVICE), features["aud"][:, :s].to(DEVICE))).cpu()
    theirs = torch.as_tensor(golden["synchronizability_logits"]).double()  # (2,): not / synchronisable
    assert rel(logit[0], theirs[1] - theirs[0]) < REL_TOL
    assert logit.sigmoid().item() == pytest.approx(theirs.softmax(-1)[1].item(), abs=1e-5)
