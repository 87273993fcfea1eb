"""Shot-detection goldens from PySceneDetect 0.5.1's ContentDetector (the version syncnet_python pins).

    pip install --no-deps --target /tmp/sd051 scenedetect==0.5.1
    PYTHONPATH=/tmp/sd051 /work/venvs/ref/bin/python tests/parity/make_goldens_scenes.py

Feeds the frames of tests/parity/scene_frames.py (BGR, subsampled by the factor its VideoManager
picks for the width) to ``ContentDetector.process_frame`` one by one, as its SceneManager does,
and writes the cut frames to tests/goldens/face_pipeline/scenes.json. (Its ``cv2.split`` result
is turned into a list: 0.5.1 assigns into it, which the tuple of today's OpenCV refuses.)
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from scene_frames import CLIP, NUM_SOURCE_FRAMES, shots_clip  # noqa: E402


def main() -> None:
    import scenedetect
    from scenedetect.detectors import ContentDetector
    from scenedetect.video_manager import compute_downscale_factor

    fixtures = REPO.parent / "shared" / "fixtures" / "real"
    with av.open(str(fixtures / CLIP)) as container:
        source = []
        for frame in container.decode(video=0):
            source.append(frame.to_ndarray(format="rgb24"))
            if len(source) == NUM_SOURCE_FRAMES:
                break
    frames = shots_clip(np.stack(source))
    factor = compute_downscale_factor(frames.shape[2])
    # 0.5.1 assigns into the result of cv2.split, a list in the OpenCV of its time and a tuple now
    import types

    import cv2
    import scenedetect.detectors.content_detector as content

    content.cv2 = types.SimpleNamespace(split=lambda im: list(cv2.split(im)), cvtColor=cv2.cvtColor,
                                        COLOR_BGR2HSV=cv2.COLOR_BGR2HSV)
    detector = ContentDetector()
    cuts = []
    for t, rgb in enumerate(frames):
        cuts += detector.process_frame(t, np.ascontiguousarray(rgb[::factor, ::factor, ::-1]))
    out = REPO / "tests" / "goldens" / "face_pipeline" / "scenes.json"
    out.write_text(json.dumps({"scenedetect": scenedetect.__version__, "downscale_factor": factor,
                               "num_frames": len(frames), "cuts": cuts,
                               "frames_sha256": hashlib.sha256(frames.tobytes()).hexdigest()}, indent=1) + "\n")
    print(f"{len(frames)} frames, subsampled by {factor}: cuts at {cuts}; wrote {out}")


if __name__ == "__main__":
    main()
