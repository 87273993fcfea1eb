"""Tracking and cropping against syncnet_python's own ``track_shot`` and ``crop_video``, through
goldens made by tests/parity/make_goldens_face_pipeline.py (same detections, same frames)."""
import hashlib
import json
from pathlib import Path

import av
import numpy as np
import pytest

from avsync.faces.crops import crop_track, smoothed_boxes
from avsync.faces.tracks import FaceTrack, TrackParams, tracks_from_detections

GOLDENS = Path(__file__).parents[1] / "goldens" / "face_pipeline"


@pytest.mark.parametrize("case", range(3))
def test_tracks_equal_authors_track_shot(case):
    golden = json.loads((GOLDENS / "tracking.json").read_text())["cases"][case]
    dets = [np.array([f["bbox"] for f in frame]).reshape(-1, 4) for frame in golden["detections"]]
    tracks = tracks_from_detections(dets, [(0, len(dets))], TrackParams(**golden["params"]))
    want = golden["tracks"]
    assert len(want) > 0 and len(tracks) == len(want)
    for got, ref in zip(tracks, want):
        assert got.frames.tolist() == ref["frame"]
        np.testing.assert_array_equal(got.boxes, np.array(ref["bbox"]))


def test_crops_equal_authors_crop_video(real_fixtures):
    made = json.loads((GOLDENS / "made_with.json").read_text())
    g = np.load(GOLDENS / "crops.npz")
    frames = []
    with av.open(str(real_fixtures / made["clip"])) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == len(g["sha256"]):
                break
    frames = np.stack(frames)
    assert [hashlib.sha256(f.tobytes()).hexdigest() for f in frames] == g["frame_sha256"].tolist()
    n = len(frames)
    track = FaceTrack(np.arange(n), g["boxes"], np.ones(n, bool))
    xs, ys, ss = smoothed_boxes(track)
    np.testing.assert_array_equal(xs, g["x"])
    np.testing.assert_array_equal(ys, g["y"])
    np.testing.assert_array_equal(ss, g["s"])
    crops = crop_track(frames, track)
    np.testing.assert_array_equal(crops[g["kept_index"]], g["kept"])
    assert [hashlib.sha256(c.tobytes()).hexdigest() for c in crops] == g["sha256"].tolist()


def test_shots_equal_pyscenedetect_051(real_fixtures):
    from avsync.faces.tracks import scene_cuts
    from parity.scene_frames import CLIP, NUM_SOURCE_FRAMES, shots_clip

    golden = json.loads((GOLDENS / "scenes.json").read_text())
    source = []
    with av.open(str(real_fixtures / CLIP)) as container:
        for frame in container.decode(video=0):
            source.append(frame.to_ndarray(format="rgb24"))
            if len(source) == NUM_SOURCE_FRAMES:
                break
    frames = shots_clip(np.stack(source))
    assert hashlib.sha256(frames.tobytes()).hexdigest() == golden["frames_sha256"]
    bounds = [0, *golden["cuts"], golden["num_frames"]]
    assert golden["cuts"] and scene_cuts(frames) == list(zip(bounds[:-1], bounds[1:]))
