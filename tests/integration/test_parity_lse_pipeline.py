"""``avsync score --metrics lse`` against syncnet_python's whole pipeline (``run_pipeline.py`` +
``run_syncnet.py``), run by ``tests/parity/make_goldens_lse_pipeline.py`` on the real fixture clips
with avsync's face detector in place of S3FD and the synthetic official-layout SyncNet weights.

The goldens' ``same_frames`` variant feeds the authors' pipeline avsync's decoded frames and
16 kHz audio with lossless intermediates, so what is compared is the pipeline itself: shots,
tracks, smoothing, crops, audio cut, MFCC and search. Its crops must be bit-identical, its track
spans and offsets equal, LSE-D / LSE-C within 1e-4. The ``published`` and ``lossless`` variants
(their MPEG-4 / JPEG / XVID round trips; ffmpeg's decoding) are measured, not tested
(``python tests/parity/lse_pipeline_avsync.py``; figures in docs/faces.md).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from avsync.faces import DlibHogDetector, crop_track
from avsync.faces.tracks import FaceTrack
from avsync.media import read_frames
from parity.lse_pipeline_avsync import GOLDEN, avsync_lse_tracks, differences

GOLDENS = json.loads(GOLDEN.read_text())
PREFIX = 40  # frames checked by the quick test (the box smoothing looks 6 frames ahead)


@pytest.mark.parametrize("name", [n for n, e in GOLDENS["clips"].items() if e["same_frames"]["tracks"]])
def test_boxes_and_crops_of_the_first_frames_equal_the_authors(name, real_fixtures):
    """Quick: avsync's detector on avsync's frames gives the boxes the authors' tracker kept, and
    avsync's cropping of the authors' track gives their crops (frame means to 1e-6)."""
    entry = GOLDENS["clips"][name]
    track = entry["same_frames"]["tracks"][0]
    first = track["first_frame"]
    boxes = np.asarray(track["boxes"])
    frames = read_frames(real_fixtures / entry["clip"], 0.0, (first + PREFIX + 7) / 25.0, 25.0)
    detector = DlibHogDetector(upsample=1)
    for t in range(first, first + 5):
        found = detector(frames[t])[:, :4]
        assert np.abs(found - boxes[t - first]).max(axis=1).min() < 1e-6, f"frame {t}: no box of the authors' track"
    n = len(boxes)
    whole = FaceTrack(np.arange(first, first + n), boxes, np.ones(n, bool))
    # the crops of the first PREFIX frames need only the first PREFIX + 6 boxes (median filter of 13)
    head = FaceTrack(whole.frames[:PREFIX + 6], boxes[:PREFIX + 6], whole.detected[:PREFIX + 6])
    crops = crop_track(frames, head)[:PREFIX, ..., ::-1]
    means = crops.reshape(PREFIX, -1).mean(1)
    np.testing.assert_allclose(means, track["crops"]["frame_means"][:PREFIX], rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parity
@pytest.mark.parametrize("name", list(GOLDENS["clips"]))
def test_score_lse_equals_syncnet_pythons_pipeline(name, real_fixtures):
    entry = GOLDENS["clips"][name]
    ours = avsync_lse_tracks(real_fixtures / entry["clip"], entry["limits"])
    diff = differences(ours, entry["same_frames"]["tracks"])
    assert diff["spans_equal"], f"tracks differ: {diff}"
    if ours:
        assert diff["crops_equal"] and diff["offsets_equal"], diff
        assert diff["lse_d"] <= 1e-4 and diff["lse_c"] <= 1e-4, diff
