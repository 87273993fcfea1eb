"""The CI metric-regression gate (``avsync gate``, ``reproductions/gate/baselines.yaml``).

The first test *is* the gate: every pinned toy run is repeated and must reach its bar. The second
breaks one model (AVST, trained from scratch) on purpose — every clip gets another clip's audio — and the gate must see it.
"""
import subprocess
import sys

import pytest
import torch

from avsync.gate import BASELINES, ShuffleAudio, judge, load_entries, select_entries

pytestmark = pytest.mark.gate


def _gate(tmp_path, *args):
    cmd = [sys.executable, "-m", "avsync.gate", "--out", str(tmp_path), *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_every_pinned_baseline_holds(tmp_path, repo_root_cwd):
    run = _gate(tmp_path)
    print(run.stdout[-4000:])
    assert run.returncode == 0, f"regression gate failed:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
    assert "| pass |" in run.stdout


SABOTAGED = "avst"  # the cheapest entry trained from scratch (baselines.yaml)


def test_gate_fails_when_the_audio_is_shuffled(tmp_path, repo_root_cwd):
    assert SABOTAGED in {e.name for e in load_entries()}
    run = _gate(tmp_path, "--models", SABOTAGED, "--sabotage", "shuffle-audio")
    print(run.stdout[-3000:])
    assert run.returncode == 1, f"the gate did not catch a model trained on shuffled audio:\n{run.stdout[-3000:]}"
    assert "FAIL" in run.stdout and "**FAILED**" in run.stdout
    saved = sorted(p.name for p in (tmp_path / "shuffle-audio" / SABOTAGED).rglob("*.ckpt"))
    assert saved == ["final.ckpt"], saved  # no per-epoch checkpoints during a gate run


def test_ci_gate_covers_all_five_papers():
    """`make test` runs an entry of each paper's model (issue 8: the CI gate is for all five)."""
    ci = {e.name for e in select_entries(load_entries(), None, False)}
    assert {"avst", "sparsesync", "synchformer", "vocalist", "divas"} <= ci, ci


def test_every_bar_sits_above_chance():
    for entry in load_entries():
        assert entry.chance < entry.bar <= entry.baseline, entry


def test_judge_table():
    entries = load_entries()[:1]
    e = entries[0]
    lines, failures = judge(entries, {e.name: {"test": {e.metric: e.bar + 1e-3}, "seconds": 1.0}})
    assert not failures and "| pass |" in lines[-1]
    lines, failures = judge(entries, {e.name: {"test": {e.metric: e.bar - 1e-3}, "seconds": 1.0}})
    assert failures and "| FAIL |" in lines[-1]
    lines, failures = judge(entries, {e.name: {"error": "exit status 1"}})
    assert failures and "exit status 1" in lines[-1]


def test_shuffle_audio_pairs_each_clip_with_another_clips_audio():
    cb = ShuffleAudio()
    batch = {"video": torch.zeros(3, 2), "audio": torch.arange(3.0)[:, None].expand(3, 4).clone()}
    cb.on_train_batch_start(None, None, batch, 0)
    assert batch["audio"][:, 0].tolist() == [2.0, 0.0, 1.0]
    first, second = {"audio": torch.ones(1, 4)}, {"audio": torch.full((1, 4), 2.0)}
    cb.on_test_batch_start(None, None, first, 0)
    cb.on_test_batch_start(None, None, second, 1)
    assert second["audio"].eq(1.0).all()  # a single clip takes the previous clip's audio


def test_baselines_file_is_where_the_gate_reads_it():
    assert BASELINES.exists(), BASELINES


def test_ci_runs_the_ci_entries_and_all_runs_every_entry():
    entries = load_entries()
    slow = [e.name for e in entries if not e.ci]
    assert slow, "the baselines name no entry outside CI; this test checks the selection"
    ci = [e.name for e in select_entries(entries, None, False)]
    assert ci and not set(ci) & set(slow)
    assert [e.name for e in select_entries(entries, None, True)] == [e.name for e in entries]
    assert [e.name for e in select_entries(entries, slow[:1], False)] == slow[:1]
    with pytest.raises(SystemExit, match="unknown gate entries"):
        select_entries(entries, ["no_such_model"], False)


def test_shuffle_audio_reaches_cached_synchformer_features():
    """The Synchformer stage-II entry trains from cached features: its audio is ``aud_feats``."""
    cb = ShuffleAudio()
    feats = torch.arange(3.0)[:, None, None, None].expand(3, 2, 1, 4).clone()
    batch = {"vis_feats": feats.clone(), "aud_feats": feats}
    cb.on_train_batch_start(None, None, batch, 0)
    assert batch["aud_feats"][:, 0, 0, 0].tolist() == [2.0, 0.0, 1.0]
    assert batch["vis_feats"][:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]
