"""Reason codes of failed rows: one word a script can filter on, beside the error message.

=================  ==========================================================================
``missing``        the path does not exist
``unreadable``     empty, not a media file, corrupt, or no stream at all
``no_video``       no video stream (an audio-only file)
``no_audio``       no audio stream (a video-only file)
``too_short``      shorter than the metric's window (e.g. 8 s for DeSync, the model's input)
``silent_audio``   the audio is silent: nothing to synchronise
``still_video``    the picture never changes: nothing to synchronise
``no_face``        a face metric found no face track (LSE)
``frame_too_small`` frames smaller than the model's crop
``decoder_crashed`` the decoding process died (a crash in FFmpeg or decord)
``timeout``        decoding took longer than ``--decode-timeout``
``error``          anything else; the message says what
=================  ==========================================================================
"""
from __future__ import annotations

from avsync.media import MediaError

__all__ = ["Unsynchronisable", "failure"]

# MediaError.code -> this table's word where the two differ (the media layer tells more kinds of
# unreadable file apart than a score row needs)
_MEDIA_CODES = {"missing_file": "missing", "empty_file": "unreadable", "zero_length": "unreadable",
                "no_streams": "unreadable", "truncated": "unreadable", "decoder_stalled": "timeout"}


class Unsynchronisable(Exception):
    """A clip that decodes but cannot be synchronised (``code``: silent_audio, still_video, no_face ...)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)

    def __reduce__(self):
        return type(self), (self.code, str(self))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def failure(err: BaseException) -> tuple[str, str]:
    """(reason code, one-line message) of an exception raised while scoring a file."""
    from avsync.evaluation.score_search import ClipTooShortForSearch

    if isinstance(err, Unsynchronisable):
        return err.code, _one_line(err)
    if isinstance(err, MediaError):
        return _MEDIA_CODES.get(err.code, err.code), _one_line(err.reason)
    if isinstance(err, ClipTooShortForSearch):
        return "too_short", _one_line(err)
    if isinstance(err, FileNotFoundError):
        return "missing", _one_line(err)
    return "error", _one_line(f"{type(err).__name__}: {err}")
