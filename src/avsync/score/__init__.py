"""``avsync score``: sync metrics for every file of a folder, one CSV row per file, resumable.

:mod:`~avsync.score.scan` lists the inputs, :mod:`~avsync.score.metrics` loads the model of each
metric and says how a file is decoded for it and scored, :mod:`~avsync.score.decode_pool` decodes
ahead of the model in worker processes (a file that crashes or hangs its decoder becomes a failure
row), :mod:`~avsync.score.results` appends the rows and writes the summary,
:mod:`~avsync.score.runner` ties them together (also ``avsync.score()``), :mod:`~avsync.score.cli`
is the command; :mod:`~avsync.score.lse` is the LSE metric's face-track pipeline.
"""
import sys
import types


class _CallableModule(types.ModuleType):
    """``avsync.score`` is both this package and the function ``avsync.score(paths, metrics=...)``:
    importing the package sets the attribute ``score`` of ``avsync`` to it, so the package itself
    calls :func:`avsync.api.score`."""

    def __call__(self, *args, **kwargs):
        from avsync.api import score

        return score(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
