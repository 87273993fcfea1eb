"""S3FD against the authors' (syncnet_python) detector, through goldens made by
tests/parity/make_goldens_s3fd.py: same deterministic random weights in the official layout,
same real fixture frame; head outputs to rel 1e-4 and the same boxes after decoding and NMS."""
import hashlib
import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from avsync.faces.s3fd import S3FD, S3FDNet, greedy_nms, merge_nms
from parity.s3fd_random_weights import random_state_dict

GOLDENS = Path(__file__).parents[1] / "goldens" / "s3fd"


@pytest.fixture(scope="module")
def golden(real_fixtures):
    info = json.loads((GOLDENS / "frame.json").read_text())
    layout = json.loads((GOLDENS / "layout.json").read_text())
    with av.open(str(real_fixtures / info["clip"])) as container:
        frames = container.decode(video=0)
        for _ in range(info["frame_index"]):
            next(frames)
        image = next(frames).to_ndarray(format="rgb24")
    assert hashlib.sha256(image.tobytes()).hexdigest() == info["sha256"], "the fixture frame is not the golden's"
    torch.set_num_threads(1)
    detector = S3FD(random_state_dict(layout))
    return info, layout, image, detector, np.load(GOLDENS / "golden.npz")


def rel(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


def test_module_names_are_the_official_layout(golden):
    _, layout, *_ = golden
    assert {k: list(v.shape) for k, v in S3FDNet().state_dict().items()} == layout


@pytest.mark.parametrize("scale", [0.25, 1.0])
def test_head_outputs_and_boxes_match_authors(golden, scale):
    info, _, image, detector, g = golden
    tag = f"s{scale:g}"
    loc, logits, priors = detector.raw(image, scale)
    assert len(loc) == int(g[f"{tag}_num_anchors"])
    stride = 1 if scale == info["full_anchors_scale"] else info["anchor_stride"]
    np.testing.assert_array_equal(priors[::stride].numpy(), g[f"{tag}_priors"])
    assert rel(loc[::stride].numpy(), g[f"{tag}_loc"]) < 1e-4
    assert rel(torch.softmax(logits, -1)[::stride].numpy(), g[f"{tag}_conf"]) < 1e-4

    boxes = detector.detect(image, conf_th=info["thresholds"][tag], scales=[scale])
    want = g[f"{tag}_boxes"]
    assert len(want) > 5 and boxes.shape == want.shape
    np.testing.assert_allclose(boxes, want, rtol=0, atol=1e-3)  # pixels and score, same order


def test_real_threshold_finds_nothing_with_random_weights(golden):
    # the run_pipeline threshold (0.9) on random weights: the decoding path still runs end to end
    *_, image, detector, _ = golden
    assert detector.detect(image).shape[1] == 5


def test_nms_drops_overlaps_keeps_best_first():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    scores = torch.tensor([0.5, 0.9, 0.7])
    assert greedy_nms(boxes, scores, 0.3, 10).tolist() == [1, 2]
    dets = np.concatenate([boxes.numpy(), scores.numpy()[:, None]], 1).astype(np.float64)
    assert merge_nms(dets, 0.1).tolist() == [1, 2]


def test_weights_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="sfd_face.pth"):
        S3FD(tmp_path / "missing.pth")
    with pytest.raises(RuntimeError, match="Missing key"):
        S3FD({"vgg.0.weight": torch.zeros(64, 3, 3, 3)})
