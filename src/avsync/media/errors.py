"""The single error type of the media layer.

Data modules skip or report bad clips; for that they need one exception to catch, and a message
that names the file. Every decode failure (missing, empty, corrupt, truncated, a missing stream,
too short for the window, silent when silence is rejected) is raised as a `MediaError`, with the
decoder's own exception kept as ``__cause__``.
"""
from __future__ import annotations

import os


# reason code (for reports: CSV, JSON) of each reason that starts with the phrase
_CODES = (
    ("no such file", "missing_file"), ("empty file", "empty_file"), ("zero length", "zero_length"),
    ("no audio or video", "no_streams"), ("no audio", "no_audio"), ("no video", "no_video"), ("too short", "too_short"),
    ("silent audio", "silent_audio"), ("still video", "still_video"), ("truncated", "truncated"),
    ("decoder stalled", "decoder_stalled"), ("frames of", "frame_too_small"), ("no face", "no_face"),
)


class MediaError(Exception):
    """A media file could not give what was asked of it.

    Attributes:
        path: the file, as given by the caller.
        reason: what went wrong, without the path.
        code: the reason as a short code for reports ("too_short", "silent_audio", ...;
            "unreadable" for anything the decoder refused).
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    @property
    def code(self) -> str:
        return next((code for phrase, code in _CODES if self.reason.startswith(phrase)), "unreadable")

    def __reduce__(self):
        # DataLoader workers pickle exceptions; the default would call __init__ with one argument
        return type(self), (self.path, self.reason)
