"""Face tracks and crops (syncnet_python's pipeline) with the default detector, on the real LRS3
fixture: one face in the full-frame clip, two faces side by side, no face; and the tracking rules
on hand-made detections."""
import numpy as np
import pytest

from avsync.faces.crops import crop_track
from avsync.faces.detectors import default_detector
from avsync.faces.pipeline import NO_FACE, face_track_crops
from avsync.faces.tracks import FaceTrack, TrackParams, face_tracks, scene_cuts, tracks_from_detections
from avsync.media.decode import read_frames

LRS3 = "lrs3/{}/pretrain/C8zY0oAdQrs/00018.mp4"
FULL = LRS3.format("h264_uncropped_25fps_256side_16000hz_aac")
CROP = LRS3.format("h264_orig_strict_crop_25fps_224side_16000hz_aac")
# the fixture's faces are 32-66 px (454x256 frames): syncnet_python's 100 px minimum would drop them
SMALL = TrackParams(min_track=20, min_face_size=20)


@pytest.fixture(scope="module")
def clip(real_fixtures):
    full = read_frames(real_fixtures / FULL, 0, 6.0, 25)
    crop = read_frames(real_fixtures / CROP, 0, 6.0, 25)
    rows = (real_fixtures / CROP).with_suffix(".txt").read_text().splitlines()[5:]
    # the face-crop fixture's box in the full frame (LRS3's metadata; template matching of the two
    # clips, avsync.faces.reference.locate_crop, finds the same box within 1.5 px)
    ref = np.array([[float(v) for v in r.split()[1:]] for r in rows]) * [454, 256, 454, 256]
    ref[:, 2:] += ref[:, :2]
    return full, crop, ref


@pytest.fixture(scope="module")
def detector():
    return default_detector()


def ncc(a, b) -> float:
    a, b = a.astype(np.float64) - a.mean(), b.astype(np.float64) - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def reference_part(crop224, track, i, ref_box, crop_scale=0.4):
    """The part of our 224 px crop that shows the fixture's box, resized to the fixture's 224 px."""
    import cv2

    from avsync.faces.crops import smoothed_boxes

    xs, ys, ss = smoothed_boxes(track)
    bs = ss[i]
    pad = int(bs * (1 + 2 * crop_scale))
    y0 = int(ys[i] + pad - bs) - pad
    x0 = int(xs[i] + pad - bs * (1 + crop_scale)) - pad
    k = 224 / (int(ys[i] + pad + bs * (1 + 2 * crop_scale)) - int(ys[i] + pad - bs))
    r = (ref_box - [x0, y0, x0, y0]) * k
    part = crop224[max(0, int(r[1])):int(r[3]), max(0, int(r[0])):int(r[2])]
    return cv2.resize(part, (224, 224))


def test_one_track_over_the_real_clip_and_crops_show_the_fixture_face(clip, detector):
    full, crop, ref = clip
    n = 30
    tracks = face_tracks(full[:n], 25.0, detector, SMALL)
    assert len(tracks) == 1
    track = tracks[0]
    assert track.frames.tolist() == list(range(n))
    crops = crop_track(full, track)
    assert crops.shape == (n, 224, 224, 3) and crops.dtype == np.uint8
    same = [ncc(reference_part(crops[i], track, i, ref[t]), crop[t]) for i, t in enumerate(track.frames)]
    # measured 0.979 mean / 0.890 min on these frames (0.934 / 0.686 over all 393 frames)
    assert np.mean(same) > 0.9 and min(same) > 0.8
    # the same comparison against the fixture 4 s later (another head pose): measured 0.810 mean
    other = [ncc(reference_part(crops[i], track, i, ref[t]), crop[t + 100]) for i, t in enumerate(track.frames)]
    assert np.mean(other) < np.mean(same) - 0.1


def test_two_faces_side_by_side_two_tracks(clip, detector):
    full, _, _ = clip
    window = (slice(0, 128), slice(240, 368))  # 128 px square around the speaker's head
    two = np.concatenate([full[0:25][:, window[0], window[1]], full[100:125][:, window[0], window[1]]], axis=2)
    tracks = face_tracks(two, 25.0, detector, SMALL)
    assert len(tracks) == 2
    centres = sorted(float(np.mean(t.boxes[:, [0, 2]])) for t in tracks)
    assert centres[0] < 128 < centres[1]
    for t in tracks:
        assert t.frames.tolist() == list(range(25))


def test_no_face_no_track(clip, detector):
    full, _, _ = clip
    background = np.ascontiguousarray(full[:25, :128, :128])  # the studio left of the speaker
    assert face_tracks(background, 25.0, detector, SMALL) == []
    result = face_track_crops(background, 25.0, detector, SMALL)
    assert result.reason == NO_FACE == "no_face" and result.tracks == []


def test_track_crops_in_one_call(clip, detector):
    full, _, _ = clip
    frames = np.ascontiguousarray(full[10:35, :128, 240:368])
    result = face_track_crops(frames, 25.0, detector, SMALL, size=112)
    assert result.reason == "" and len(result.tracks) == 1
    (one,) = result.tracks
    assert one.crops.shape == (25, 112, 112, 3)
    assert (one.start_sec, one.end_sec) == (0.0, 1.0)


def test_default_minimum_face_size_drops_small_faces():
    dets = [np.array([[10, 10, 50, 50, 1.0]]) for _ in range(120)]
    assert tracks_from_detections(dets, [(0, 120)]) == []  # 40 px < 100 px
    assert len(tracks_from_detections(dets, [(0, 120)], TrackParams(min_face_size=39))) == 1


def box(x, y=10.0, s=40.0):
    return np.array([[x, y, x + s, y + s, 1.0]])


def test_tracking_bridges_gaps_interpolates_and_needs_enough_detections():
    params = TrackParams(min_track=5, num_failed_det=3, min_face_size=10)
    empty = np.empty((0, 5))
    dets = [box(10), box(11), empty, empty, box(14), box(15), box(16), box(17)]
    (track,) = tracks_from_detections(dets, [(0, 8)], params)
    assert track.frames.tolist() == list(range(8))
    assert track.detected.tolist() == [True, True, False, False, True, True, True, True]
    np.testing.assert_allclose(track.boxes[2:4, 0], [12.0, 13.0])  # linear between frames 1 and 4
    # a gap longer than num_failed_det ends the track: 2 + 4 detections, neither more than min_track
    dets = [box(10), box(11), empty, empty, empty, empty, box(16), box(17), box(18), box(19)]
    assert tracks_from_detections(dets, [(0, 10)], params) == []
    # a jump (IoU <= 0.5) starts another track
    dets = [box(10)] * 6 + [box(100)] * 6
    tracks = tracks_from_detections(dets, [(0, 12)], params)
    assert [t.frames[0] for t in tracks] == [0, 6]


def test_tracking_follows_the_reference_list_walk():
    # two overlapping boxes in frame 0: the first starts the track and is taken out of the frame's
    # list while it is walked, so the second is skipped in that pass (and starts its own track later)
    params = TrackParams(min_track=2, num_failed_det=25, min_face_size=10)
    dets = [np.concatenate([box(10), box(12)]), box(11), box(11), box(11)]
    tracks = tracks_from_detections(dets, [(0, 4)], params)
    assert len(tracks) == 1 and tracks[0].frames.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(tracks[0].boxes[0, 0], 10.0)


def test_shots_and_short_shots():
    frames = np.zeros((40, 32, 32, 3), np.uint8)
    frames[20:] = 200  # a hard cut at frame 20
    assert scene_cuts(frames) == [(0, 20), (20, 40)]
    frames[5] = 200  # a flash one frame long: cut at 5, none at 6 (min_scene_len 15), next at 20
    assert scene_cuts(frames) == [(0, 5), (5, 20), (20, 40)]
    params = TrackParams(min_track=10, min_face_size=10)
    dets = [box(10)] * 40
    # the shot 5-20 (15 frames) holds a track of 15 > 10; 0-5 is shorter than min_track
    tracks = tracks_from_detections(dets, scene_cuts(frames), params)
    assert [(t.frames[0], t.frames[-1]) for t in tracks] == [(5, 19), (20, 39)]


def test_crop_geometry_matches_the_reference_rule():
    frames = np.zeros((13, 100, 100, 3), np.uint8)
    frames[:, 40:60, 40:60] = 255
    track = FaceTrack(np.arange(13), np.tile([40.0, 40.0, 60.0, 60.0], (13, 1)), np.ones(13, bool))
    crops = crop_track(frames, track, size=28)
    # half-side 10, crop 28 px from y 40 (top of the box) and x 36: the box fills rows 0-20, cols 4-24
    mid = crops[6]
    assert mid[2, 14].tolist() == [255] * 3 and mid[24, 14].tolist() == [0] * 3
    assert mid[14, 1].tolist() == [0] * 3 and mid[14, 14].tolist() == [255] * 3
    with pytest.raises(ValueError, match="track spans"):
        crop_track(frames[:5], track)


@pytest.mark.slow
def test_whole_real_clip_is_one_track(real_fixtures, detector):
    """All 393 frames (about a minute of detection on one core): one track over the whole clip with
    syncnet_python's track length (100 frames), crops close to the face-crop fixture."""
    full = read_frames(real_fixtures / FULL, 0, 15.72, 25)
    crop = read_frames(real_fixtures / CROP, 0, 15.72, 25)
    rows = (real_fixtures / CROP).with_suffix(".txt").read_text().splitlines()[5:]
    ref = np.array([[float(v) for v in r.split()[1:]] for r in rows]) * [454, 256, 454, 256]
    ref[:, 2:] += ref[:, :2]
    tracks = face_tracks(full, 25.0, detector, TrackParams(min_face_size=20))
    assert len(tracks) == 1 and tracks[0].frames.tolist() == list(range(len(full)))
    crops = crop_track(full, tracks[0])
    same = [ncc(reference_part(crops[i], tracks[0], i, ref[t]), crop[t]) for i, t in enumerate(tracks[0].frames)]
    assert np.mean(same) > 0.9  # measured 0.934 (min 0.686, where the head turns)
