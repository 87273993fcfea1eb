"""The data modules under Lightning DDP (2 CPU processes, gloo): every validation item is scored
exactly once per epoch, none repeated to even out the ranks."""
import json
import os
import subprocess
import sys
from pathlib import Path


from support.media_cases import write_case

SCRIPT = Path(__file__).with_name("ddp_validation_run.py")


def test_ddp_validation_sees_every_item_exactly_once(tmp_path):
    clips = tmp_path / "data" / "clips"
    clips.mkdir(parents=True)
    for i in range(5):  # 5 items on 2 ranks: 3 + 2, where padding would score one twice
        write_case(clips / f"c{i}.mp4", seconds=2.0)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "data"), str(out)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 2  # two validation epochs on each rank
    for epoch in range(2):
        seen = ranks[0][epoch] + ranks[1][epoch]
        assert sorted(seen) == list(range(5)), seen
        assert {len(ranks[0][epoch]), len(ranks[1][epoch])} == {2, 3}
