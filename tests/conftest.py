"""Shared test fixtures: where the read-only real clips live, the per-session toy cache, and the
toy-set factory (each distinct toy set encoded once per session).

The tiers: tests/unit (pure functions, seconds), tests/integration (CLI runs, fits, real-fixture
decoding, parity goldens), tests/gate (the metric-regression gate). Helpers they share live in
tests/support; the authors'-code scripts that made tests/goldens live in tests/parity."""
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
# ../shared sits beside the checkout (CI clones the repo with shared/ next to it)
SHARED = Path(os.environ.get("AVSYNC_SHARED", REPO_ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures" / "real"


@pytest.fixture(scope="session")
def real_fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"real fixtures not found at {FIXTURES} (set AVSYNC_SHARED to the shared/ folder)")
    return FIXTURES


def _session_dir(tmp_path_factory, name: str) -> Path:
    """A folder every xdist worker of this run shares (the workers' common base), else this session's."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> str:
    """One toy-set cache for the whole run, shared by the xdist workers: data modules write the sets
    they ask for into it once (a lock file per set makes the others wait, and a set only grows), so
    tests that train on the same toy configuration do not each encode it again. Tests that need a
    set of their own contents ask ``toy_set`` for it instead."""
    return str(_session_dir(tmp_path_factory, "toy_cache"))


@pytest.fixture(scope="session")
def toy_set(tmp_path_factory) -> Callable[..., Path]:
    """Factory of fixed toy sets: ``toy_set(variant, splits, seed=0, duration_sec=10.0, size=None)``
    returns a folder that holds exactly that set (``<folder>/<variant>_...``, as data modules and
    ``read_index`` expect). Each parameter set gets its own folder, so a set never grows under a
    test that counts its clips (unlike ``toy_root``), and is encoded once per run: the xdist workers
    share the folders and ``generate_toy_set``'s lock makes a second worker wait for the first."""
    from avsync.toy.generate import generate_toy_set

    base = _session_dir(tmp_path_factory, "toy_sets")
    made: dict[str, Path] = {}

    def make(variant: str = "dense", splits: dict[str, int] | None = None, seed: int = 0,
             duration_sec: float = 10.0, size: int | None = None) -> Path:
        split_part = "-".join(f"{k}{v}" for k, v in sorted((splits or {}).items())) or "default"
        name = f"{variant}_seed{seed}_{duration_sec:g}s_size{size}_{split_part}"
        if name not in made:
            root = base / name
            generate_toy_set(root, variant, splits, seed=seed, duration_sec=duration_sec, size=size, progress=False)
            made[name] = root
        return made[name]

    return make


@pytest.fixture
def repo_root_cwd(monkeypatch):
    """Run from the repository root, as the README's commands do (configs are relative paths)."""
    monkeypatch.chdir(REPO_ROOT)
    return REPO_ROOT


def pytest_collection_modifyitems(config, items):
    """The regression gate (minutes, one test) runs first, so that under ``pytest -n 2`` (``make
    test``) one worker starts it at once while the other works through the short tests."""
    items.sort(key=lambda item: item.get_closest_marker("gate") is None)


def pytest_configure(config):
    """Each xdist worker computes with one thread: two workers fill the two cores of the CI machine
    (two workers x two threads each would fight over them)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"  # and the processes its tests start
        torch.set_num_threads(1)
