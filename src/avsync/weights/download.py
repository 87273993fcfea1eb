"""Downloading a published checkpoint into the cache so that the cache never holds an unchecked file.

The file is streamed into ``<cache>/<file>.part`` (same folder, so the final rename is atomic),
hashed as it arrives, and only when every announced byte is there and the published checksum
matches is it ``fsync``'d and moved to ``<cache>/<file>`` with :func:`os.replace`. So the final
path holds either nothing or a complete, checked file. What is left behind on failure:

* HTTP error (404, 403, ...) or no connection: nothing new (an older ``.part`` stays for a later resume);
* truncated download (the connection closed before ``Content-Length`` bytes arrived): the
  ``.part`` stays, and the next call resumes it with an HTTP ``Range`` request (a server that
  ignores ``Range`` and answers 200 makes it start over);
* wrong checksum: the ``.part`` is deleted (its bytes are wrong; resuming would keep them).

Every failure is one :class:`DownloadError` whose message is one line naming the URL and reason.
Where the authors publish no checksum (SyncNet, S3FD), completeness is all that can be checked
(a response without ``Content-Length`` is then refused); the file's sha256 is computed anyway and
returned so the caller can show it. A lock file
(``<file>.lock``, ``fcntl``) serialises processes that fetch the same file (DDP ranks, two
shells): the second waits and then finds the finished file.

The cache is ``$AVSYNC_CACHE_DIR/weights`` (default ``~/.cache/avsync/weights``), the project's
cache convention (toy sets live in ``toy/`` beside it).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from avsync.weights.catalog import Checksum

__all__ = ["DownloadError", "Downloaded", "weights_cache_dir", "download", "file_digest"]

CHUNK_BYTES = 1 << 20
TIMEOUT_SEC = 60.0


class DownloadError(RuntimeError):
    """A download that failed; the message is one line (URL and reason)."""


@dataclass(frozen=True)
class Downloaded:
    path: Path
    digest: str  # hex digest of the whole file, in ``algorithm``
    algorithm: str
    resumed_from: int  # bytes that were already in the .part file (0: fresh download)


def weights_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir`` if given, else ``$AVSYNC_CACHE_DIR/weights`` (default ``~/.cache/avsync/weights``)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("AVSYNC_CACHE_DIR", "~/.cache/avsync")).expanduser() / "weights"


def file_digest(path: str | Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks (1 GB checkpoints do not go through memory at once)."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.hexdigest()


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": "avsync-weights"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # Range past the end: the .part is not a prefix of this file
            return None
        raise DownloadError(f"{url}: HTTP {err.code} {_one_line(err.reason)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        raise DownloadError(f"{url}: cannot connect ({_one_line(reason)})") from None


def _start_offset(response, offset: int) -> int:
    """Where the response's bytes start in the file: ``offset`` for a 206 that honours the Range,
    0 when the server sent the whole file."""
    if not offset or response.status != 206:
        return 0
    content_range = response.headers.get("Content-Range", "")  # "bytes START-END/TOTAL"
    try:
        start = int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        raise DownloadError(f"{response.url}: 206 response without a usable Content-Range "
                            f"({content_range!r})") from None
    if start != offset:
        raise DownloadError(f"{response.url}: asked for bytes from {offset}, server sent from {start}")
    return offset


def _stream(url: str, part: Path, algorithm: str, progress: bool, timeout: float) -> tuple[str, int, int | None]:
    """Fill ``part`` up to the announced length; return (digest of the whole file, resumed-from offset,
    announced total size or None)."""
    offset = part.stat().st_size if part.exists() else 0
    response = _open(url, offset, timeout)
    if response is None:  # the old .part does not fit the file on the server: start over
        part.unlink()
        offset, response = 0, _open(url, 0, timeout)
    with response:
        offset = _start_offset(response, offset)
        hasher = hashlib.new(algorithm)
        if offset:
            with open(part, "rb") as f:
                while chunk := f.read(CHUNK_BYTES):
                    hasher.update(chunk)
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=part.name[: -len(".part")], disable=not progress, leave=False)
        with bar, open(part, "r+b" if offset else "wb") as out:
            out.seek(offset)
            out.truncate()
            try:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    hasher.update(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException):
                pass  # a dropped connection: the length check below reports it
            out.flush()
            os.fsync(out.fileno())
    received = part.stat().st_size
    if total is not None and received != total:
        raise DownloadError(f"{url}: truncated download, {received} of {total} bytes; the partial file "
                            f"{part} is kept and the next fetch resumes it")
    return hasher.hexdigest(), offset, total


def download(url: str, dest: str | Path, checksum: Checksum | None = None, *, progress: bool = True,
             timeout: float = TIMEOUT_SEC) -> Downloaded:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), check it, and move it into place.

    With ``checksum`` the file's digest must match it (a prefix where the authors publish one);
    without, the sha256 is computed and returned. Raises :class:`DownloadError`. An existing
    ``dest`` is not downloaded again (it is returned with its digest recomputed).
    """
    dest = Path(dest)
    algorithm = checksum.algorithm if checksum else "sha256"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with _exclusive(dest.with_name(dest.name + ".lock")):
        if dest.exists():  # finished by another process while this one waited, or earlier
            return Downloaded(dest, file_digest(dest, algorithm), algorithm, 0)
        digest, resumed, total = _stream(url, part, algorithm, progress, timeout)
        if checksum is None and total is None:
            part.unlink()
            raise DownloadError(f"{url}: the server announced no length and the authors publish no checksum, "
                                f"so the download cannot be checked; it was deleted")
        if checksum is not None and not checksum.matches(digest):
            part.unlink()
            raise DownloadError(f"{url}: checksum mismatch, {algorithm} {digest} is not the published "
                                f"{checksum.describe()}; the download was deleted")
        os.replace(part, dest)
    return Downloaded(dest, digest, algorithm, resumed)
