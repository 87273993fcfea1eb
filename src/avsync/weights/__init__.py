"""The authors' published checkpoints by name: catalog, checked download, conversion, loading.

Python API (what ``avsync detect --model``, ``avsync score`` and ``avsync.load`` call)::

    from avsync.weights import load_official, load_authors_file, fetch, convert, names, get

    module = load_official(name, device="cpu", cache_dir=None, progress=True)
        # -> the suite's LightningModule (eval mode, on ``device``) holding the authors' weights
        #    ``name`` (see ``names()``); the authors' file is downloaded and checked on first use and
        #    the converted checkpoint is cached as ``<cache>/<name>.avsync.pt``; then
        #    ``avsync.detect.detectors.detector_for(module)`` runs it on files.
    module = load_authors_file(path, name=None, device="cpu")
        # -> the same from an authors'-format file on disk (offline), converted in memory; ``name``
        #    picks the converter and checks a published checksum, else the family is read from the keys
    path = fetch(name, cache_dir=None, progress=True)      # the checked authors' file (e.g. ``s3fd``)
    path = convert(name, cache_dir=None, progress=True)    # the cached converted checkpoint
    entry = get(name)                                       # its :class:`catalog.OfficialWeights`

Errors: :class:`DownloadError` (HTTP error, truncated download, checksum mismatch; one line) and
:class:`WeightsError` (no direct URL, no converter, unreadable or wrong file). The cache is
``$AVSYNC_CACHE_DIR/weights`` (default ``~/.cache/avsync/weights``).

``avsync weights list`` / ``avsync weights fetch NAME [--convert]`` is the command line
(:mod:`avsync.weights.cli`). The catalog and the download need no torch; the rest is imported on use.
"""
from __future__ import annotations

import importlib

from avsync.weights.catalog import OFFICIAL_WEIGHTS, Checksum, OfficialWeights, get, names
from avsync.weights.download import DownloadError, download, weights_cache_dir

_LAZY = {"fetch", "convert", "converted_path", "load_official", "load_authors_file", "WeightsError",
         "guess_converter"}

__all__ = ["OFFICIAL_WEIGHTS", "Checksum", "OfficialWeights", "get", "names", "DownloadError", "download",
           "weights_cache_dir", *sorted(_LAZY)]


def __getattr__(attr: str):
    if attr in _LAZY:  # torch and the converters load only when weights are actually used
        return getattr(importlib.import_module("avsync.weights.load"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
