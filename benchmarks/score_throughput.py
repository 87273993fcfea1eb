"""Throughput of ``avsync score``: clips per second for each metric, decoding included (run on demand),
beside the reference scripts on the same files.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/score_throughput.py --metrics offset,desync --size toy
    .venv/bin/python benchmarks/score_throughput.py --size full --device cuda --clips ../shared/fixtures/real
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/score_throughput.py --size full --metrics offset,lse,desync \
        --offset-model syncnet --min-face-size 20 --reference --clips CLIP...

Models are random-init (throughput does not depend on the weights): ``--size toy`` the toy SyncNet
(offset, 32 px score search) and the toy Synchformer (DeSync, 32 px); ``--size full`` the paper-size
Synchformer for both (offset: grid classifier over 4.8 s crops; DeSync: 2 windows of 14 segments),
or with ``--offset-model syncnet`` the paper-size SyncNet on face tracks for offset (syncnet_python's
``evaluate`` per track); ``lse`` always runs the paper-size SyncNet (synthetic official-layout
weights) on face tracks (dlib detector; ``--min-face-size`` / ``--min-track`` as ``avsync score``).
Clips: ``--clips`` (files, folders, @lists) or N synthetic 10 s H.264/AAC clips written first.
Each metric runs alone through the same runner as the command (``run_score``, no CSV), on a GPU once
to warm up on the first clip, then timed over all clips: wall time, and the CPU time of this process and its
decoding processes (on a shared machine the wall time mostly measures the neighbours).

``--reference`` also times the authors' scripts on the same clips, in their environment
(``--ref-python``): syncnet_python's ``run_pipeline.py`` + ``run_syncnet.py`` as published (its
output is both the offset and LSE-C/LSE-D; ``benchmarks/reference_syncnet_python.py``), and
av-benchmark's DeSync path (``tests/goldens/make_desync_golden.py``; the clip loop is timed, its
model set-up is not). Prints a markdown table and writes it to
benchmarks/results/score_throughput_<size>_<device>.md (``--out`` to choose).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def _checkpoint(metric: str, size: str, folder: Path) -> Path:
    torch.manual_seed(0)
    if size == "full" or metric == "desync":
        from avsync.papers.synchformer.stage2 import SynchformerStage2Module

        arch = "synchformer" if size == "full" else "synchformer_toy"
        overrides = {} if size == "full" else {"resize_short_side": 32}
        module = SynchformerStage2Module(arch=arch, input_overrides=overrides)
        class_path = "avsync.papers.synchformer.stage2.SynchformerStage2Module"
    else:
        from avsync.papers.syncnet.module import SyncNetModule

        module = SyncNetModule(arch="syncnet_toy", input_overrides={"crop": "full", "frame_size": 32,
                                                                     "resize_short_side": 32},
                               clip_frames=40, eval_contexts=[5])
        class_path = "avsync.papers.syncnet.module.SyncNetModule"
    path = folder / f"{metric}_{size}.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": {**module.hparams, "_class_path": class_path}},
               path)
    return path


def _synthetic_clips(folder: Path, count: int) -> list[str]:
    from avsync.toy.title import write_title

    return [str(write_title(folder / f"clip{i}.mp4", 10.0, lambda t: np.zeros_like(t), seed=i)) for i in range(count)]


def _syncnet_weights(folder: Path) -> Path:
    """The paper-size SyncNet's synthetic official-layout weights (as the parity goldens use)."""
    from avsync.convert.synthetic_weights import read_layout, synthetic_state_dict

    path = folder / "syncnet_v2.model"
    torch.save(synthetic_state_dict(read_layout(REPO / "tests/goldens/syncnet/syncnet_layout.json")), path)
    return path


def _choice(metric: str, args, folder: Path):
    from avsync.score.metrics import ModelChoice

    if metric == "lse" or (metric == "offset" and args.offset_model == "syncnet"):
        return ModelChoice(weights=f"syncnet:{_syncnet_weights(folder)}")
    return ModelChoice(ckpt=str(_checkpoint(metric, args.size, folder)))


def _row(metric: str, implementation: str, clips: int, scored: int, seconds: float, cpu: float | None) -> str:
    cpu_cells = f"{cpu:.1f} | {clips / cpu:.3f}" if cpu else "- | -"
    return f"| {metric} | {implementation} | {clips} | {scored} | {seconds:.1f} | {clips / seconds:.4f} | {cpu_cells} |"


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def _reference_syncnet_python(clips: list[str], args) -> tuple[int, float, float, list[dict]]:
    """(scored, wall seconds summed over clips, CPU seconds, per-clip records) of syncnet_python."""
    env = {**os.environ, "PYTHONPATH": args.scenedetect_051}
    cmd = [args.ref_python, str(REPO / "benchmarks/reference_syncnet_python.py"), "--authors-repo",
           args.syncnet_python, "--min-track", str(args.min_track), "--min-face-size", str(int(args.min_face_size)),
           *clips]
    cpu0 = _children_cpu()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    records = [json.loads(line) for line in out.splitlines() if line.startswith('{"clip"')]
    return (sum(bool(r["tracks"]) for r in records), sum(r["seconds"] for r in records), _children_cpu() - cpu0,
            records)


def _reference_desync(clips: list[str], args) -> tuple[int, float]:
    """(scored, seconds of the clip loop) of av-benchmark's DeSync: the clips are timed between the
    per-clip lines the script prints (the first clip after a warm-up copy of it)."""
    cmd = [args.ref_python, str(REPO / "tests/goldens/make_desync_golden.py"), "--authors-repo", args.av_benchmark,
           "--fixtures", "/", "--out", os.devnull, "--clips", clips[0], *clips]
    stamps = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          cwd=REPO) as proc:
        for line in proc.stdout:
            if line.startswith('{"clip"'):
                stamps.append(time.perf_counter())
    if len(stamps) != len(clips) + 1:
        raise RuntimeError(f"av-benchmark's DeSync scored {len(stamps) - 1} of {len(clips)} clips")
    return len(clips), stamps[-1] - stamps[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", default="offset,desync")
    parser.add_argument("--size", choices=("toy", "full"), default="toy")
    parser.add_argument("--offset-model", choices=("synchformer", "syncnet"), default="synchformer",
                        help="--size full: the offset model (syncnet: paper-size SyncNet on face tracks)")
    parser.add_argument("--clips", nargs="*", help="inputs (default: --synthetic clips of 10 s)")
    parser.add_argument("--synthetic", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--min-face-size", type=float, default=100.0)
    parser.add_argument("--min-track", type=int, default=100)
    parser.add_argument("--reference", action="store_true", help="also time the authors' scripts")
    parser.add_argument("--ref-python", default="/work/venvs/ref/bin/python")
    parser.add_argument("--syncnet-python", default="/work/ref/syncnet_python")
    parser.add_argument("--av-benchmark", default="/work/ref/av-benchmark")
    parser.add_argument("--scenedetect-051", default="/tmp/sd051", help="PYTHONPATH holding PySceneDetect 0.5.1")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from avsync.faces.model_input import FaceOptions
    from avsync.faces.tracks import TrackParams
    from avsync.score.runner import resolve_device, run_score
    from avsync.score.scan import scan_inputs

    device = resolve_device(args.device)
    faces = FaceOptions(params=TrackParams(min_track=args.min_track, min_face_size=args.min_face_size))
    lines = [f"`{' '.join(['benchmarks/score_throughput.py', *(argv if argv is not None else sys.argv[1:])])}`",
             "", f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads, device {device}, workers {args.workers}, size {args.size}", "",
             "| metric | implementation | clips | scored | wall s | clips/s (wall) | CPU s | clips per CPU s |",
             "|---|---|---|---|---|---|---|---|"]
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clips = scan_inputs(args.clips) if args.clips else _synthetic_clips(tmp, args.synthetic)
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        for metric in metrics:
            choices = {metric: _choice(metric, args, tmp)}
            options = dict(choices=choices, device=device, progress=False, faces=faces)
            if device.startswith("cuda"):  # warm-up (CUDA context, kernels); on the CPU it only costs time
                run_score(clips[:1], [metric], workers=0, **options)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start, cpu0 = time.perf_counter(), os.times()
            rows = run_score(clips, [metric], workers=args.workers, **options)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds, cpu1 = time.perf_counter() - start, os.times()
            cpu = sum(getattr(cpu1, k) - getattr(cpu0, k) for k in ("user", "system", "children_user",
                                                                       "children_system"))
            scored = sum(r["status"] == "ok" for r in rows)
            name = "avsync score" + (" (SyncNet, face tracks)" if metric == "lse" or (
                metric == "offset" and args.offset_model == "syncnet") else "")
            lines.append(_row(metric, name, len(clips), scored, seconds, cpu))
            print(lines[-1], flush=True)
            for r in rows:
                if r["status"] != "ok":
                    notes.append(f"avsync {metric}: {Path(r['path']).name}: {r['reason']}")
        if args.reference and ({"lse", "offset"} & set(metrics)):
            scored, seconds, cpu, records = _reference_syncnet_python(clips, args)
            lines.append(_row("lse + offset", "syncnet_python run_pipeline + run_syncnet", len(clips), scored,
                              seconds, cpu))
            print(lines[-1], flush=True)
            for r in records:
                found = r["error"] or f"{len(r['tracks'])} tracks"
                notes.append(f"syncnet_python: {Path(r['clip']).name}: {found}")
        if args.reference and "desync" in metrics:
            scored, seconds = _reference_desync(clips, args)
            lines.append(_row("desync", "av-benchmark DeSync (clip loop)", len(clips), scored, seconds, None))
            print(lines[-1], flush=True)
    text = "\n".join(lines + ([""] + [f"- {n}" for n in notes] if notes else [])) + "\n"
    print(text)
    out = args.out or REPO / "benchmarks" / "results" / f"score_throughput_{args.size}_{device.split(':')[0]}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
