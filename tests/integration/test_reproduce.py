"""The reproduction runner on a two-stage miniature plan: table, resume, labelling, tolerance gate."""
import json
import shutil

import yaml

from avsync.reproduce import REPRODUCTIONS, main
from support.cli_overrides import cli_overrides

TOY = cli_overrides(data={"num_train": 6, "num_valid": 3, "num_test": 3, "batch_size": 2, "num_workers": 0},
                    trainer={"limit_val_batches": 1, "limit_test_batches": 1, "val_check_interval": 2})


def _mini_plan(tmp_path, toy_root):
    plans = tmp_path / "plans"
    shutil.copytree(REPRODUCTIONS / "sparsesync" / "configs", plans / "mini" / "configs")
    shutil.copy(REPRODUCTIONS / "trainer.yaml", plans / "trainer.yaml")
    data = ["--data.init_args.root", str(toy_root), *TOY]
    sync = ["../trainer.yaml#sparsesync_toy", "configs/model.yaml#toy_sync", "configs/data.yaml#toy_dense"]
    plan = {"toy": [
        {"name": "pretrain", "configs": ["../trainer.yaml#sparsesync_toy", "configs/data.yaml#toy_dense",
                                         "configs/model.yaml#toy_pretrain"],
         "args": ["--trainer.max_steps", "2", *data], "test": False},
        {"name": "dense_21cls", "configs": sync, "init_from": "pretrain", "args": ["--trainer.max_steps", "2", *data]},
        {"name": "dense_21cls_len{len}", "matrix": {"len": [3]}, "fit": False, "init_from": "dense_21cls", "configs": sync,
         "args": [*data, "--model.init_args.input_overrides", "{frame_size: 32, resize_short_side: 32, duration_sec: {len}.0}"]},
    ]}
    numbers = {"numbers": [
        {"table": "2", "setting": "dense 21", "metric": "test/acc_tol", "value": 95.6, "toy_stage": "dense_21cls"},
        {"table": "4", "setting": "dense 3 s", "metric": "test/acc_tol", "value": 36.8, "toy_stage": "dense_21cls_len3"},
        {"table": "6", "setting": "not run", "metric": "test/acc_tol", "value": 80.0},
    ]}
    (plans / "mini" / "plan.yaml").write_text(yaml.safe_dump(plan))
    (plans / "mini" / "paper_numbers.yaml").write_text(yaml.safe_dump(numbers))
    return plans


def test_runner_writes_table_and_resumes(tmp_path, tmp_path_factory, repo_root_cwd):
    toy_root = tmp_path_factory.mktemp("toy")
    plans, out = _mini_plan(tmp_path, toy_root), tmp_path / "out"
    assert main(["mini", "--plans", str(plans), "--out", str(out)]) == 0
    table = (out / "results.md").read_text()
    assert "Toy scale" in table and "this run (toy)" in table
    rows = [line for line in table.splitlines() if line.startswith("| 2 ") or line.startswith("| 4 ")]
    assert len(rows) == 2 and all("—" not in r.split("|")[5] for r in rows), table
    assert "| 6 | not run |" in table
    assert "| dense_21cls/final.ckpt |" in table and str(tmp_path) not in table  # no machine paths
    result = json.loads((out / "dense_21cls" / "result.json").read_text())
    assert 0.0 <= result["test"]["test/acc_tol"] <= 1.0
    assert (out / "curves.png").exists()
    # a second call finds every stage done and only rewrites the table
    before = (out / "dense_21cls" / "result.json").stat().st_mtime
    assert main(["mini", "--plans", str(plans), "--out", str(out)]) == 0
    assert (out / "dense_21cls" / "result.json").stat().st_mtime == before
