"""Face tracks for the face-crop models (SyncNet, VocaLiST, DiVAS face, LSE): syncnet_python's pipeline.

    frames = read_frames(path, 0, duration, 25.0)              # decode at 25 fps, as syncnet_python
    tracks = face_tracks(frames, 25.0, default_detector())     # [] -> report the file as NO_FACE
    crops = [crop_track(frames, t) for t in tracks]            # (N, 224, 224, 3) uint8 per track
    result = face_track_crops(frames, 25.0)                    # both at once, reason "no_face" or ""

Detectors: :func:`default_detector` (dlib's HOG, model inside the dlib-bin wheel) or
:class:`S3FD` (syncnet_python's, official ``sfd_face.pth`` from the weights registry). Active
speaker over time: :func:`avsync.faces.active_speaker.speaking_over_time`.
"""
from avsync.faces.crops import crop_track
from avsync.faces.detectors import DlibHogDetector, FaceDetector, HaarFaceDetector, default_detector
from avsync.faces.pipeline import NO_FACE, FaceCrops, TrackCrops, face_track_crops
from avsync.faces.s3fd import S3FD
from avsync.faces.tracks import FaceTrack, TrackParams, face_tracks

__all__ = ["FaceTrack", "TrackParams", "face_tracks", "crop_track", "FaceDetector", "DlibHogDetector",
           "HaarFaceDetector", "S3FD", "default_detector", "NO_FACE", "face_track_crops", "FaceCrops",
           "TrackCrops"]
