"""Writing a toy set to disk as real mp4 files (H.264 + AAC), read back like any dataset.

Layout::

    <root>/<variant>_<fps>fps_<H>px_<duration>s_seed<seed>/   (<H>x<W>px when not square, _<rate>hz when not 16 kHz)
        manifest.json                  the generator config + GENERATOR_VERSION
        index.csv                      path (relative to this folder), split, duration_sec, variant
        <split>/<split>_<index:05d>.mp4
        <split>/<split>_<index:05d>.json   the clip's meta (envelope / event times, ...) and GOP

The folder is a cache: a call whose manifest matches and whose files all exist returns at once;
missing clips (an interrupted run, a deleted file) are rendered again, and each depends only on
(seed, split, index), so a resumed or enlarged set has the same clips as one written in one go.
A manifest whose content config differs (other version, duration, size, ...) invalidates the
folder's clips, which are then deleted and rewritten.

Encoding: H.264 at crf 18 (I/P quality differences negligible) and a key-frame every
``gop`` frames, ``gop`` drawn per clip so that key-frames fall every 0.5-2.5 s. x264's default
puts one key-frame at frame 0 of a 10 s clip (keyint 250), which makes "a key-frame here"
equivalent to "this crop starts at the clip start"; with frequent key-frames at a random
period they carry no such hint, and decoders seek faster. The GOP draw uses its own random
stream, so it never changes the content. x264 runs deterministic (``write_mp4(deterministic=True)``:
mbtree off, one thread): with x264's defaults 7 of 48 clips written twice in parallel came out with
other packets (decoded frames up to 52 levels apart), so the same seeded run gave other tables on
another cache; now every clip is the same file on every run (``tests/integration/test_toy_determinism.py``).
"""
from __future__ import annotations

import argparse
import csv
import fcntl
import json
import os
import shutil
import tempfile
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, is_dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avsync.toy.render import frame_size, render_clip

GENERATOR_VERSION = 5  # bump whenever a change would alter the rendered clips
DEFAULT_SPLITS = {"train": 256, "valid": 64, "test": 64}
SPLIT_IDS = {"train": 0, "valid": 1, "test": 2}
CRF = 18
PRESET = "veryfast"  # x264 speed preset: ~30 % faster than the default, same crf (quality)
GOP_SEC_RANGE = (0.5, 2.5)


def default_cache_dir() -> Path:
    """``$AVSYNC_CACHE_DIR`` or ``~/.cache/avsync``; toy sets live under its ``toy/``."""
    return Path(os.environ.get("AVSYNC_CACHE_DIR", "~/.cache/avsync")).expanduser()


def split_id(split: str) -> int:
    """0/1/2 for train/valid/test; any other split name gets a stable CRC32 id."""
    return SPLIT_IDS.get(split, zlib.crc32(split.encode()))


def clip_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one clip's content."""
    return np.random.default_rng([seed, split_id(split), index])


def clip_gop(seed: int, split: str, index: int, fps: float) -> int:
    """Key-frame interval of one clip in frames (own random stream: content is unaffected)."""
    gop_sec = np.random.default_rng([seed, split_id(split), index, 1]).uniform(*GOP_SEC_RANGE)
    return max(1, round(gop_sec * fps))


def set_name(variant: str, fps: float, size: tuple[int, int], seed: int, duration_sec: float = 10.0,
             sample_rate: int = 16000) -> str:
    """The set's folder name: every content parameter a caller can choose is in it, so sets that
    differ in any of them live side by side in one cache instead of one deleting the other's clips
    (a folder's manifest still guards against other generator versions)."""
    height, width = size
    pixels = f"{height}px" if height == width else f"{height}x{width}px"
    rate = "" if int(sample_rate) == 16000 else f"_{int(sample_rate)}hz"
    return f"{variant}_{fps:g}fps_{pixels}_{duration_sec:g}s{rate}_seed{seed}"


def clip_relpath(split: str, index: int) -> str:
    return f"{split}/{split}_{index:05d}.mp4"


def generate_toy_set(
    root: str | os.PathLike | None = None,
    variant: str = "dense",
    splits: dict[str, int] | None = None,
    seed: int = 0,
    duration_sec: float = 10.0,
    fps: float = 25.0,
    size: int | tuple[int, int] | None = None,
    sample_rate: int = 16000,
    workers: int = 1,
    progress: bool = True,
) -> Path:
    """Write (or complete) a toy set and return its folder; see the module docstring.

    ``root`` defaults to ``default_cache_dir() / "toy"``; ``size`` to the variant's default.
    Processes that ask for the same set at once (parallel runs, CI jobs) take turns on a lock file
    beside it: the first writes, the others then find the clips there.
    """
    root = default_cache_dir() / "toy" if root is None else Path(root)
    splits = dict(DEFAULT_SPLITS if splits is None else splits)
    height, width = frame_size(variant, size)
    set_dir = root / set_name(variant, fps, (height, width), seed, duration_sec, sample_rate)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{set_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return _generate_locked(set_dir, variant, splits, seed, duration_sec, fps, (height, width), sample_rate,
                                workers, progress)


def _generate_locked(set_dir: Path, variant: str, splits: dict[str, int], seed: int, duration_sec: float, fps: float,
                     size: tuple[int, int], sample_rate: int, workers: int, progress: bool) -> Path:
    height, width = size
    content = dict(
        generator_version=GENERATOR_VERSION,
        variant=variant,
        seed=seed,
        duration_sec=float(duration_sec),
        fps=float(fps),
        height=height,
        width=width,
        sample_rate=int(sample_rate),
        vcodec="h264",
        acodec="aac",
        crf=CRF,
        gop_sec_range=list(GOP_SEC_RANGE),
    )
    manifest_path, index_path = set_dir / "manifest.json", set_dir / "index.csv"
    old = _read_json(manifest_path)
    if old is not None and {k: v for k, v in old.items() if k != "splits"} != content:
        for split in old.get("splits", {}):  # stale clips: remove before anything else
            shutil.rmtree(set_dir / split, ignore_errors=True)
        index_path.unlink(missing_ok=True)
    elif old is not None:
        # the set only grows: a smaller request keeps the larger set's clips listed, so runs that
        # ask for different numbers of clips (each reads the first n of a split) never shrink the
        # index under one another
        for split, n in old.get("splits", {}).items():
            splits[split] = max(int(n), splits.get(split, 0))
    manifest = {**content, "splits": splits}
    jobs = [(split, i) for split, n in splits.items() for i in range(n)]
    missing = [(s, i) for s, i in jobs if not all(p.exists() for p in _clip_files(set_dir, s, i))]
    if old == manifest and not missing and index_path.exists():
        return set_dir

    set_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
    for split in splits:
        (set_dir / split).mkdir(exist_ok=True)
    args = (set_dir, variant, seed, duration_sec, fps, (height, width), sample_rate)
    bar = tqdm(total=len(missing), desc=f"toy {set_dir.name}", unit="clip", disable=not progress)
    if workers <= 1 or len(missing) <= 1:
        for split, i in missing:
            _make_clip(*args, split, i)
            bar.update()
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for future in as_completed([pool.submit(_make_clip, *args, s, i) for s, i in missing]):
                future.result()
                bar.update()
    bar.close()

    rows = [[clip_relpath(s, i), s, f"{duration_sec:g}", variant] for s, i in jobs]
    text = "path,split,duration_sec,variant\n" + "".join(",".join(r) + "\n" for r in rows)
    _write_atomic(index_path, text)
    return set_dir


def _clip_files(set_dir: Path, split: str, index: int) -> tuple[Path, Path]:
    mp4 = set_dir / clip_relpath(split, index)
    return mp4, mp4.with_suffix(".json")


def _make_clip(set_dir, variant, seed, duration_sec, fps, size, sample_rate, split, index) -> None:
    from avsync.media.encode import write_mp4

    clip = render_clip(variant, clip_rng(seed, split, index), duration_sec, fps, size, sample_rate)
    gop = clip_gop(seed, split, index, fps)
    mp4, side = _clip_files(set_dir, split, index)
    write_mp4(mp4, clip.frames, fps, clip.audio, sample_rate, vcodec="h264", acodec="aac", crf=CRF, gop=gop,
              preset=PRESET, deterministic=True)
    meta = {"seed": seed, "split": split, "index": index, "gop": gop, **clip.meta}
    _write_atomic(side, json.dumps(_jsonable(meta), separators=(",", ":")))  # written last: marks done


def _jsonable(x):
    if is_dataclass(x):
        return _jsonable(x.as_dict() if hasattr(x, "as_dict") else asdict(x))
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return np.round(x.astype(np.float64), 3).tolist() if x.dtype.kind == "f" else x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a cache should be shareable
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_index(set_dir: str | os.PathLike) -> list[dict]:
    """The rows of a set's index.csv, with ``path`` made absolute."""
    set_dir = Path(set_dir)
    with open(set_dir / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [{**r, "path": str(set_dir / r["path"]), "duration_sec": float(r["duration_sec"])} for r in rows]


def main(argv: list[str] | None = None) -> Path:
    from avsync.toy.render import VARIANTS

    p = argparse.ArgumentParser(prog="avsync generate-toy",
                                description="Write a synthetic AV toy set (also: python -m avsync.toy.generate).")
    p.add_argument("--variant", default="dense", help=f"which toy world, one of {', '.join(sorted(VARIANTS))} "
                   "(default dense)")
    p.add_argument("--out", type=Path, default=None, help="root folder (default: <default_cache_dir()>/toy)")
    for split, n in DEFAULT_SPLITS.items():
        p.add_argument(f"--{split}", type=int, default=n, help=f"number of {split} clips (default {n})")
    p.add_argument("--seed", type=int, default=0, help="generator seed: the same seed writes the same clips")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per clip")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate of the clips (default 25)")
    p.add_argument("--size", type=int, default=None, help="frame side in pixels (default: the variant's)")
    p.add_argument("--sample-rate", type=int, default=16000, help="audio sample rate in Hz (default 16000)")
    p.add_argument("--workers", type=int, default=1, help="processes rendering clips (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    splits = {s: getattr(a, s) for s in DEFAULT_SPLITS}
    out = generate_toy_set(
        a.out, a.variant, splits, a.seed, a.duration, a.fps, a.size, a.sample_rate, a.workers, not a.quiet
    )
    print(out)
    return out


if __name__ == "__main__":
    main()
