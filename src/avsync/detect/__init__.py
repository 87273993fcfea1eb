"""``avsync detect``: the audio-visual offset of video files with any of the suite's checkpoints.

:mod:`~avsync.detect.loading` rebuilds the module from a checkpoint, :mod:`~avsync.detect.detectors`
runs it on a decoded file (grid classifier or score search), :mod:`~avsync.detect.result` words the
answer, :mod:`~avsync.detect.plots` draws it and :mod:`~avsync.detect.cli` is the command.
"""
