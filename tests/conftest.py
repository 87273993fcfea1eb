"""Shared test fixtures: where the read-only real clips live, and a per-session toy cache."""
import os
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


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> str:
    """One toy-set cache for the whole run, shared by the xdist workers: data modules write the sets
    they ask for into it once (a lock file per set makes the others wait, and a set only grows), so
    tests that train on the same toy configuration do not each encode it again. Tests that need a
    set of their own contents generate it into their own folder instead."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "toy_cache"
    root.mkdir(exist_ok=True)
    return str(root)


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
