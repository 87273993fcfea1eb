"""The runner's figures: per true offset and per dataset class, beside the table and linked from it."""
import json

import yaml

from avsync.reproduce import REPRODUCTIONS, PaperNumber, main, write_table
from avsync.reproduce_plots import write_stage_plots
from support.cli_overrides import cli_overrides

SMALL = cli_overrides(data={"num_train": 2, "num_valid": 1, "num_test": 4, "batch_size": 2, "clip_duration_sec": 6,
                            "generator_workers": 1},
                      trainer={"max_steps": 1, "limit_val_batches": 0, "val_check_interval": 1})


def test_sparse_stage_gets_per_offset_and_per_class_plots(tmp_path, tmp_path_factory, repo_root_cwd):
    """One fit step and a test on the toy sparse set (its clips classed by number of events)."""
    plans, out = tmp_path / "plans", tmp_path / "out"
    (plans / "mini").mkdir(parents=True)
    (plans / "mini" / "configs").symlink_to(REPRODUCTIONS / "sparsesync" / "configs")
    (plans / "trainer.yaml").symlink_to(REPRODUCTIONS / "trainer.yaml")
    data = ["--data.init_args.root", str(tmp_path_factory.mktemp("toy")), *SMALL]
    plan = {"toy": [{"name": "sparse", "args": data, "configs": [
        "../trainer.yaml#sparsesync_toy", "configs/model.yaml#toy_sync", "configs/data.yaml#toy_sparse"]}]}
    (plans / "mini" / "plan.yaml").write_text(yaml.safe_dump(plan))
    (plans / "mini" / "paper_numbers.yaml").write_text(yaml.safe_dump({"numbers": [
        {"table": "2", "setting": "sparse 21", "metric": "test/acc_tol", "value": 44.3, "toy_stage": "sparse"}]}))
    assert main(["mini", "--plans", str(plans), "--out", str(out)]) == 0
    result = json.loads((out / "sparse" / "result.json").read_text())
    breakdown = result["breakdown"]
    assert len(breakdown["offsets_sec"]) == 21 and sum(breakdown["per_offset"]["count"]) == 4
    assert sum(breakdown["per_class"]["count"]) == 4 and "2 events" in breakdown["classes"]
    # the table's numbers and the breakdown are the same test
    tested = [a for a in breakdown["per_offset"]["acc_tol"] if a is not None]
    counts = [c for c in breakdown["per_offset"]["count"] if c]
    assert abs(sum(a * c for a, c in zip(tested, counts)) / 4 - result["test"]["test/acc_tol"]) < 1e-6
    table = (out / "results.md").read_text()
    assert "[per offset](sparse_per_offset.png)" in table and "[per class](sparse_per_class.png)" in table
    assert (out / "sparse_per_offset.png").stat().st_size > 0 and (out / "sparse_per_class.png").stat().st_size > 0


def test_stage_without_classes_or_breakdown(tmp_path):
    breakdown = {"offsets_sec": [-1.0, 0.0, 1.0],
                 "per_offset": {"count": [1, 0, 2], "acc@1": [1.0, None, 0.5], "acc_tol": [1.0, None, 1.0]}}
    (tmp_path / "dense_per_class.png").write_bytes(b"stale")
    written = write_stage_plots(tmp_path, "dense", {"breakdown": breakdown})
    assert [p.name for p in written] == ["dense_per_offset.png"]
    assert not (tmp_path / "dense_per_class.png").exists()
    assert write_stage_plots(tmp_path, "pretrain", {"checkpoint": "x"}) == []
    number = PaperNumber("2", "dense", "test/acc_tol", 95.6, "dense")
    write_table([number], {"dense": {"seconds": 1}, "pretrain": {"seconds": 2}}, tmp_path, "toy", "mini")
    rows = {line.split("|")[1].strip(): line for line in (tmp_path / "results.md").read_text().splitlines()
            if line.startswith("| dense ") or line.startswith("| pretrain ")}
    assert "[per offset](dense_per_offset.png)" in rows["dense"] and "per class" not in rows["dense"]
    assert rows["pretrain"].endswith("|  |")
