"""Official weights -> a ready LightningModule: fetch (cached), convert (cached), rebuild.

The authors' file is kept under its own name in the weights cache; the converted Lightning-style
checkpoint beside it as ``<name>.avsync.pt``, written to a temporary file in the same folder and
moved into place with :func:`os.replace` (so a killed conversion leaves no half file under the
final name). Both are read with ``torch.load(..., weights_only=True)``: the authors' pickles carry
OmegaConf objects, which :func:`avsync.convert.safe_load` reads as inert stand-ins.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from avsync.convert import read_state_dict
from avsync.registry import get_converter, get_model
from avsync.weights.catalog import OfficialWeights, get
from avsync.weights.download import download, file_digest, weights_cache_dir

__all__ = ["WeightsError", "fetch", "converted_path", "convert", "load_official", "load_authors_file",
           "guess_converter"]


class WeightsError(ValueError):
    """Official weights that cannot be used as asked (no download URL, no converter, wrong file)."""


def fetch(name: str, cache_dir: str | Path | None = None, *, progress: bool = True) -> Path:
    """The authors' checkpoint ``name`` in the cache, downloaded and checked on first use.

    A file already at its cache path is returned as it is (only a checked download, or the user,
    puts one there); ``avsync weights fetch`` checks it again."""
    entry = get(name)
    dest = weights_cache_dir(cache_dir) / entry.filename
    if dest.exists():
        return dest
    if entry.url is None:
        raise WeightsError(f"{name}: the authors publish no direct download; get {entry.filename} by hand from "
                           f"{entry.page} and pass it with --weights PATH (or put it at {dest})")
    return download(entry.url, dest, entry.checksum, progress=progress).path


def converted_path(name: str, cache_dir: str | Path | None = None) -> Path:
    return weights_cache_dir(cache_dir) / f"{name}.avsync.pt"


def _converter_of(entry: OfficialWeights):
    if entry.model is None:
        raise WeightsError(f"{entry.name}: avsync has no converter for this checkpoint ({entry.notes})")
    return get_converter(entry.model)


def _lightning_checkpoint(converter: str, arch: str, state: Mapping[str, torch.Tensor], origin: dict) -> dict:
    """The converter's Lightning-style checkpoint, with where its weights came from (plain strings)."""
    ckpt = get_converter(converter).lightning_checkpoint(state, arch=arch)
    ckpt["official_weights"] = origin
    return ckpt


def _origin(entry: OfficialWeights, file: str) -> dict:
    return {"name": entry.name, "file": file, "url": entry.url or entry.page or ""}


def convert(name: str, cache_dir: str | Path | None = None, *, progress: bool = True, force: bool = False) -> Path:
    """The converted checkpoint of ``name`` (``<cache>/<name>.avsync.pt``), made on first use
    (``force``: made again, e.g. after a converter changed)."""
    entry = get(name)
    out = converted_path(name, cache_dir)
    if out.exists() and not force:
        return out
    _converter_of(entry)  # before a download that could not be used
    src = fetch(name, cache_dir, progress=progress)
    ckpt = _lightning_checkpoint(entry.model, (entry.arch or get_model(entry.model).arch), read_state_dict(src), _origin(entry, src.name))
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def load_official(name: str, device: str = "cpu", cache_dir: str | Path | None = None, *, progress: bool = True):
    """The LightningModule of official weights ``name``, in eval mode on ``device`` (fetched and
    converted on first use, from the cache afterwards)."""
    from avsync.detect.loading import load_module

    return load_module(convert(name, cache_dir, progress=progress), device)


# -- an authors' file given by path (offline) -------------------------------------------------------
_SIGNATURES = (  # a key prefix only one family's official state dict has -> its converter
    ("netcnnaud.", "syncnet"),
    ("av_transformer.", "vocalist"),
    ("transformer.v_selector.", "sparsesync"),
    ("transformer.pos_emb_cfg.", "synchformer"),
)


def guess_converter(state: Mapping[str, torch.Tensor]) -> str:
    """Which converter an authors'-layout state dict belongs to, from its key names."""
    for prefix, converter in _SIGNATURES:
        if any(k.startswith(prefix) for k in state):
            return converter
    raise WeightsError(f"cannot tell which model the checkpoint holds (first keys: {sorted(state)[:4]}); "
                       f"name it with --model")


def load_authors_file(path: str | Path, name: str | None = None, device: str = "cpu"):
    """The LightningModule of an authors'-format checkpoint file, converted in memory.

    With ``name`` (a catalog entry) its converter and configuration are used and a published
    checksum is checked; without, the model family is recognised from the key names.
    """
    from avsync.detect.loading import module_from_checkpoint

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    if name is not None:
        entry = get(name)
        _converter_of(entry)  # before hashing a file that could not be used
        if entry.checksum is not None:
            digest = file_digest(path, entry.checksum.algorithm)
            if not entry.checksum.matches(digest):
                raise WeightsError(f"{path}: {entry.checksum.algorithm} {digest} is not the published "
                                   f"{entry.checksum.describe()} of {name}")
    try:
        state = read_state_dict(path)
    except Exception as err:  # not a pickle, truncated, no tensors: torch and pickle raise many kinds
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise WeightsError(f"{path}: cannot read checkpoint ({type(err).__name__}: {first[:200]})") from err
    if name is None:  # each converter's default configuration is named like it
        family = guess_converter(state)
        ckpt = _lightning_checkpoint(family, family, state, {"name": "", "file": str(path), "url": ""})
    else:
        ckpt = _lightning_checkpoint(entry.model, (entry.arch or get_model(entry.model).arch), state, _origin(entry, str(path)))
    return module_from_checkpoint(ckpt, device, source=str(path))

