"""Smoke test of the benchmark scripts: each runs its tiny mode (toy configs, one step, in process)
and writes its table and plot. Benchmark figures themselves are never asserted."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_scripts_run_their_tiny_mode(tmp_path, monkeypatch):
    runs = {
        "train_step": ["--toy", "--cases", "divas_face", "--no-isolate", "--quick", "--steps", "1"],
        "inference": ["--toy", "--cases", "divas_face", "--no-isolate", "--warmup", "0", "--calls", "1"],
        "sparsesync_memory": ["--width", "toy", "--seconds", "1", "--no-isolate", "--steps", "1"],
        "speedups": ["--toy", "--models", "divas_frame", "--rounds", "1"],
        "pair_windows": ["--toy", "--no-isolate", "--batch", "4", "--warmup", "0", "--calls", "1"],
    }
    for name, argv in runs.items():
        out = tmp_path / f"{name}.md"
        _script(name).main([*argv, "--out", str(out)])
        text = out.read_text()
        assert "torch " in text and "command: `" in text and "| " in text, name
        assert out.with_suffix(".png").stat().st_size > 0, name
    monkeypatch.setattr(sys, "argv", ["loader_throughput.py", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        _script("loader_throughput").main()
    assert exit_info.value.code == 0


@pytest.mark.slow  # ~40 CPU s: four subprocesses each importing torch
def test_gpu_check_walks_its_path_on_cpu(tmp_path):
    """`benchmarks/gpu_check.py --device cpu --dry-run`: the GPU check's steps (bf16 training and
    inference tables, a real-clip detect, the parity tests collected) run here without a GPU."""
    out = tmp_path / "gpu_check.md"
    code = _script("gpu_check").main(["--device", "cpu", "--dry-run", "--cases", "divas_face", "--out", str(out)])
    text = out.read_text()
    assert "`detect` divas_face (random init) | ok" in text, text
    assert "`train_step.py` (bf16) | ok" in text and "`inference.py` (bf16) | ok" in text, text
    assert (tmp_path / "train_step_cpu_bf16_toy.md").exists() and (tmp_path / "inference_cpu_bf16_toy.md").exists()
    assert code == 0, text
