"""Give the authors' code the ``torchvision.io.read_video`` it was written for.

SparseSync and Synchformer decode with ``torchvision.io.read_video`` (their environments pin
torchvision 0.12.0 and 0.15.0, PyAV backend); torchvision >= 0.25 no longer has it. This module
loads ``io/video.py`` and ``io/_video_opt.py`` from the torchvision wheel the authors pinned (a
path given to the golden scripts; ``pip download torchvision==0.12.0 --no-deps --python-version
3.10 --only-binary=:all:``), without its compiled extensions, and installs its ``read_video`` as
``torchvision.io.read_video`` in the running process. The PyAV path it takes is pure Python, so
it decodes exactly as in the authors' environment given the same FFmpeg decoders.

Used only by the golden scripts (run with the authors' code), never by the tests.
"""
from __future__ import annotations

import sys
import types
import zipfile
from pathlib import Path


def install(wheel: str | Path) -> str:
    """Install the wheel's ``read_video`` as ``torchvision.io.read_video``; returns the wheel's name."""
    import torchvision.io

    pkg = "_legacy_torchvision"
    with zipfile.ZipFile(wheel) as zf:
        sources = {name: zf.read(f"torchvision/io/{name}.py").decode() for name in ("video", "_video_opt")}
    root = types.ModuleType(pkg)
    root.__path__ = []
    utils = types.ModuleType(f"{pkg}.utils")
    utils._log_api_usage_once = lambda *a, **k: None
    extension = types.ModuleType(f"{pkg}.extension")

    def _load_library(name):  # the compiled video_reader is not loaded: read_video takes its PyAV path
        raise ImportError(name)

    extension._load_library = _load_library
    io = types.ModuleType(f"{pkg}.io")
    io.__path__ = []
    sys.modules.update({pkg: root, f"{pkg}.utils": utils, f"{pkg}.extension": extension, f"{pkg}.io": io})
    for name in ("_video_opt", "video"):
        module = types.ModuleType(f"{pkg}.io.{name}")
        module.__package__ = f"{pkg}.io"
        sys.modules[module.__name__] = module
        exec(compile(sources[name], f"{wheel}!torchvision/io/{name}.py", "exec"), module.__dict__)
        setattr(io, name, module)
    torchvision.io.read_video = sys.modules[f"{pkg}.io.video"].read_video
    return Path(wheel).name
