"""Media I/O: decode clips (frames with decord, audio with PyAV) and write them (PyAV, in-process)."""
from avsync.media.checks import unsynchronisable_reason
from avsync.media.decode import ClipInfo, probe, read_audio, read_clip, read_frames
from avsync.media.encode import shift_audio_copy, write_mp4
from avsync.media.errors import MediaError

__all__ = [
    "ClipInfo",
    "MediaError",
    "probe",
    "read_audio",
    "read_clip",
    "read_frames",
    "shift_audio_copy",
    "unsynchronisable_reason",
    "write_mp4",
]
