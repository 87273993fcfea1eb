"""``avsync weights list`` and ``avsync weights fetch NAME [--convert]``.

``list`` prints every named official checkpoint: paper, training data, size (where known),
checksum status and whether it (and its converted form) is in the cache. ``fetch`` downloads one
into the cache (progress bar, resumable, checked, atomic) and with ``--convert`` also writes the
converted checkpoint ``<name>.avsync.pt`` that ``avsync detect --model NAME`` reads (again, if it
exists: after an avsync update changed a converter). A file already in the cache is checked again.
"""
from __future__ import annotations

import argparse
import sys

from avsync.registry import get_model
from avsync.weights.catalog import OFFICIAL_WEIGHTS, get
from avsync.weights.download import DownloadError, file_digest, weights_cache_dir


def _size(num_bytes: int | None) -> str:
    return "unknown" if num_bytes is None else f"{num_bytes / 2**20:.1f} MiB"


def list_weights(cache_dir=None) -> list[dict]:
    """One row per catalog entry, with what the cache holds."""
    root = weights_cache_dir(cache_dir)
    rows = []
    for entry in OFFICIAL_WEIGHTS.values():
        cached = root / entry.filename
        rows.append({"name": entry.name, "paper": entry.paper, "dataset": entry.dataset,
                     "size": _size(cached.stat().st_size if cached.exists() else entry.size_bytes),
                     "checksum": entry.checksum_status,
                     "cached": ("yes" if cached.exists() else "no")
                     + (" +converted" if (root / f"{entry.name}.avsync.pt").exists() else ""),
                     "download": entry.url or f"by hand: {entry.page}"})
    return rows


def markdown_table() -> str:
    """The catalog as the README shows it (regenerate with ``avsync weights list --markdown``)."""
    lines = ["| name | paper | trained on | file (download) | checksum | avsync converter |",
             "|---|---|---|---|---|---|"]
    for e in OFFICIAL_WEIGHTS.values():
        link = f"[{e.filename}]({e.url})" if e.url else f"{e.filename} ([by hand]({e.page}))"
        converter = f"`{e.model}` ({(e.arch or get_model(e.model).arch)})" if e.model else "none"
        lines.append(f"| `{e.name}` | {e.paper} | {e.dataset} | {link} | {e.checksum_status} | {converter} |")
    return "\n".join(lines)


def _print_table(rows: list[dict], columns: tuple[str, ...]) -> None:
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avsync weights", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", default=None,
                        help="default: $AVSYNC_CACHE_DIR/weights or ~/.cache/avsync/weights")
    sub = parser.add_subparsers(dest="command", required=True)
    lst = sub.add_parser("list", help="the named official checkpoints")
    lst.add_argument("--urls", action="store_true", help="also print each download URL")
    lst.add_argument("--markdown", action="store_true", help="the README's table (name, paper, data, URL, checksum)")
    fetch = sub.add_parser("fetch", help="download (and with --convert convert) one checkpoint into the cache")
    fetch.add_argument("name", choices=list(OFFICIAL_WEIGHTS), metavar="NAME")
    fetch.add_argument("--convert", action="store_true",
                       help="also (re)write <name>.avsync.pt, the converted checkpoint detect --model reads")
    fetch.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list" and args.markdown:
        print(markdown_table())
        return 0
    if args.command == "list":
        columns = ("name", "paper", "size", "checksum", "cached") + (("download",) if args.urls else ())
        _print_table(list_weights(args.cache_dir), columns)
        print(f"cache: {weights_cache_dir(args.cache_dir)}")
        return 0
    from avsync.weights.load import WeightsError, convert, fetch

    try:
        path = fetch(args.name, args.cache_dir, progress=not args.no_progress)
        entry = get(args.name)
        if entry.checksum is None:
            checked = f"no published checksum; sha256 {file_digest(path, 'sha256')}"
        else:  # again: the file may have been in the cache already
            digest = file_digest(path, entry.checksum.algorithm)
            if not entry.checksum.matches(digest):
                raise WeightsError(f"{path}: {entry.checksum.algorithm} {digest} is not the published "
                                   f"{entry.checksum.describe()}; delete it and fetch again")
            checked = f"{entry.checksum.algorithm} {digest} matches the published {entry.checksum.hexdigest}"
        print(f"{args.name}: {path} ({checked})")
        if args.convert:
            print(f"{args.name}: converted -> {convert(args.name, args.cache_dir, force=True)}")
    except (DownloadError, WeightsError) as err:
        print(f"avsync weights: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
