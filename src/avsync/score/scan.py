"""The inputs of ``avsync score``: files, folders (searched recursively) and list files (``@list.txt``).

Every input that was named stays in the list, even a missing one, so that it gets its row (reason
``missing``); a folder contributes its video files, sorted, hidden files skipped.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["VIDEO_EXTENSIONS", "scan_inputs"]

#: containers a folder scan picks up (case-insensitive); a file named explicitly is taken whatever its suffix
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts")


def _normal(path: str | Path) -> str:
    return os.path.normpath(str(path))


def _folder(folder: Path) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, f) for f in sorted(files)
                  if not f.startswith(".") and f.lower().endswith(VIDEO_EXTENSIONS)]
    return [_normal(f) for f in found]


def _list_file(list_path: Path) -> list[str]:
    """One path per line; blank lines and ``#`` comments skipped; relative paths are relative to the
    list file's folder. A missing list file is an error of the command line, not a row."""
    if not list_path.is_file():
        raise FileNotFoundError(f"list file {list_path} does not exist")
    out = []
    for line in list_path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            path = Path(line)
            out.append(_normal(path if path.is_absolute() else list_path.parent / path))
    return out


def scan_inputs(items: list[str | Path]) -> list[str]:
    """The files to score, in the order named (folders expanded in sorted order), each once."""
    paths: list[str] = []
    for item in items:
        text = str(item)
        if text.startswith("@"):
            for entry in _list_file(Path(text[1:])):
                paths += _folder(Path(entry)) if Path(entry).is_dir() else [entry]
        elif Path(text).is_dir():
            paths += _folder(Path(text))
        else:
            paths.append(_normal(text))
    return list(dict.fromkeys(paths))
