"""avsync: audio-visual synchronisation experiments (AVST, SparseSync, Synchformer, VocaLiST, DiVAS).

``avsync.load(...)`` and ``avsync.score(...)`` (:mod:`avsync.api`) are imported on first use, so
``import avsync`` stays light.
"""

__version__ = "0.1.0"
__all__ = ["load", "score", "Prediction"]


def __getattr__(name):
    if name == "score":  # the package avsync.score, callable as avsync.score(paths, metrics=...)
        import avsync.score

        return avsync.score
    if name in __all__:
        from avsync import api

        return getattr(api, name)
    raise AttributeError(f"module 'avsync' has no attribute {name!r}")
