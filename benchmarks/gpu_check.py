"""The GPU check: every full-size model trained a few steps in bf16, one ``detect`` per model, the
parity tests on the device, and one table of it all (issue 21, point 4).

Run it when a GPU machine is lent (``bash benchmarks/gpu_check.sh`` there); it writes
``benchmarks/results/gpu_check.md`` beside the ``train_step_cuda_bf16.md`` / ``inference_cuda_bf16.md``
tables it has the two benchmarks write (samples/s, peak memory, per-clip latency, DiVAS Table 1 FPS
beside the paper's). ``--device cpu --dry-run`` walks the same path on this CPU with the toy configs,
one step each, a real-clip ``detect`` of two models and the parity tests only collected, so the
script is exercised by ``tests/integration/test_benchmarks.py`` without a GPU.

    python benchmarks/gpu_check.py --device cuda                 # on the lent GPU
    python benchmarks/gpu_check.py --device cpu --dry-run        # the path, on CPU, in ~a minute
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_cases import CASES  # noqa: E402
from bench_common import REPO, RESULTS, header, markdown_table, write_report  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures" / "real"
#: which real clip ``detect`` reads for a model: face crops for the lip models, full frames otherwise
FACE_MODELS = ("syncnet", "vocalist", "divas_face")
DRY_RUN_CASES = ["syncnet", "vocalist"]
# bf16 autocast moves outputs by ~1e-2 relative: the parity tests keep fp32 on the GPU (TF32 off)
PARITY_ENV = {"AVSYNC_TEST_DEVICE": "cuda", "NVIDIA_TF32_OVERRIDE": "0"}


def fixture_clip(face: bool) -> Path:
    variant = "h264_orig_strict_crop_25fps_224side_16000hz_aac" if face else "h264_uncropped_25fps_256side_16000hz_aac"
    clips = sorted((FIXTURES / "lrs3" / variant).rglob("*.mp4"))
    if not clips:
        raise SystemExit(f"no real LRS3 fixture clip under {FIXTURES / 'lrs3' / variant}")
    return clips[0]


def run(cmd: list[str], env: dict | None = None) -> tuple[int, float, str]:
    """Run one step of the check; its exit code, seconds and last output line."""
    import os
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, **(env or {})})
    tail = (proc.stdout.strip().splitlines() or proc.stderr.strip().splitlines() or [""])[-1]
    print(f"$ {' '.join(cmd)}\n  -> exit {proc.returncode}: {tail[:200]}", flush=True)
    return proc.returncode, time.perf_counter() - start, tail


def save_random_checkpoint(key: str, toy: bool, path: Path) -> None:
    """A Lightning-style checkpoint of the model at random init: what ``detect --ckpt`` reads."""
    import torch
    torch.manual_seed(0)
    module = CASES[key].make(toy)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--dry-run", action="store_true", help="toy configs, one step, parity tests collected only")
    p.add_argument("--cases", nargs="*", help="models (default: all; dry run: " + " ".join(DRY_RUN_CASES) + ")")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    cases = args.cases or (DRY_RUN_CASES if args.dry_run else list(CASES))
    out = args.out or RESULTS / ("gpu_check_dry_run.md" if args.dry_run else "gpu_check.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    py, tag = sys.executable, f"_{args.device.split(':')[0]}_bf16" + ("_toy" if args.dry_run else "")
    scale = ["--toy", "--steps", "1", "--budget", "5"] if args.dry_run else ["--steps", str(args.steps)]
    rows = []
    for bench, extra in (("train_step", scale), ("inference", ["--toy", "--calls", "1"] if args.dry_run else [])):
        table = out.parent / f"{bench}{tag}.md"
        code, sec, tail = run([py, str(HERE / f"{bench}.py"), "--device", args.device, "--bf16",
                               "--cases", *cases, "--out", str(table), *extra])
        rows.append([f"`{bench}.py` (bf16)", "ok" if code == 0 else f"FAILED: {tail[:120]}", f"{sec:.0f}",
                     f"[{table.name}]({table.name})"])
    with tempfile.TemporaryDirectory() as tmp:
        for key in cases:
            if key == "synchformer_stage1":
                continue  # pre-training: no offset to detect
            ckpt = Path(tmp) / f"{key}.ckpt"
            save_random_checkpoint(key, args.dry_run, ckpt)
            code, sec, tail = run([py, "-m", "avsync.cli", "detect", "--ckpt", str(ckpt), "--device", args.device,
                                   str(fixture_clip(key in FACE_MODELS))])
            rows.append([f"`detect` {key} (random init)", "ok" if code == 0 else f"FAILED: {tail[:120]}",
                         f"{sec:.1f}", tail[:100].replace("|", "/")])
    parity = [py, "-m", "pytest", "-q", "-p", "no:xdist", "-m", "parity", "tests"]
    code, sec, tail = run(parity + (["--collect-only"] if args.dry_run else []), env=PARITY_ENV)
    rows.append(["parity tests on the device (fp32)" + (" — collected only" if args.dry_run else ""),
                 "ok" if code == 0 else f"FAILED: {tail[:120]}", f"{sec:.0f}", tail[:100]])
    lines = header("GPU check" + (" (dry run on CPU, toy configs)" if args.dry_run else ""),
                   [str(Path("benchmarks") / "gpu_check.py"), *(argv if argv is not None else sys.argv[1:])],
                   args.device)
    lines += markdown_table(["step", "result", "seconds", "detail"], rows)
    write_report(out, lines)
    return 0 if all(r[1] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
