"""Decoding ahead of the model in worker processes, one short-lived process per file.

A file is decoded in its own forked process, at most ``workers`` at a time and ``2 x workers``
ahead of the file the model is on; results come back in input order. A decoder that crashes
(segfault, abort) or hangs past ``timeout_s`` takes only its own process down: that file's result
is a failure (``decoder_crashed`` / ``timeout``) and the run goes on. With ``workers=0`` files are
decoded in this process, one after the other (no isolation; for debugging and small runs).
"""
from __future__ import annotations

import multiprocessing as mp
import sys
import time
from typing import Any, Callable, Iterable, Iterator

__all__ = ["CRASHED", "TIMEOUT", "decode_ahead"]

CRASHED, TIMEOUT = "decoder_crashed", "timeout"


def _child(fn: Callable[[str], Any], path: str, conn) -> None:
    if "torch" in sys.modules:  # one thread per decoding process
        sys.modules["torch"].set_num_threads(1)
    try:
        outcome = ("ok", fn(path))
    except BaseException as err:  # noqa: BLE001 - anything the decoder raises goes back as data
        outcome = ("raised", err)
    try:
        conn.send(outcome)
    except Exception as err:  # noqa: BLE001 - an exception that does not pickle
        conn.send(("raised", RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]} ({err})")))
    finally:
        conn.close()


def _start(ctx, fn, path):
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(fn, path, send), daemon=True)
    process.start()
    send.close()
    return path, process, receive, time.monotonic()


def _collect(job, timeout_s: float) -> tuple[str, Any]:
    path, process, receive, started = job
    try:
        if receive.poll(max(0.0, timeout_s - (time.monotonic() - started))):
            try:
                return path, receive.recv()
            except (EOFError, OSError):
                process.join(5)
                return path, ("failed", CRASHED, f"the decoding process died (exit code {process.exitcode})")
        process.kill()
        return path, ("failed", TIMEOUT, f"decoding took longer than {timeout_s:g} s")
    finally:
        receive.close()
        process.join(5)


def decode_ahead(fn: Callable[[str], Any], paths: Iterable[str], workers: int = 1,
                 timeout_s: float = 600.0) -> Iterator[tuple[str, tuple]]:
    """Yield ``(path, outcome)`` in input order; outcome is ``("ok", fn(path))``, ``("raised", exception)``
    or ``("failed", code, message)`` for a crashed or hung decoder. ``fn`` runs in a forked child, so it
    may be a closure; its result must pickle (numpy arrays, not torch tensors)."""
    paths = list(paths)
    if workers <= 0:
        for path in paths:
            try:
                yield path, ("ok", fn(path))
            except Exception as err:  # noqa: BLE001
                yield path, ("raised", err)
        return
    ctx = mp.get_context("fork")
    jobs: dict[int, tuple] = {}
    started = 0
    try:
        for i in range(len(paths)):
            # a child that has decoded waits in its send until collected, so "alive" = decoding or holding a result
            while (started < len(paths) and started < i + 2 * workers
                   and sum(job[1].is_alive() for job in jobs.values()) < workers or started == i):
                jobs[started] = _start(ctx, fn, paths[started])
                started += 1
            yield _collect(jobs.pop(i), timeout_s)
    finally:
        for job in jobs.values():
            job[1].kill()
            job[1].join(5)
            job[2].close()
