"""Reproduction plans: matrices expand into the stages they name, every plan's configs resolve, and the
results tables in the per-paper READMEs are the ones generated from the committed results files."""
import csv
import hashlib
import shutil

import pytest
import yaml

from avsync.reproduce import (REPRODUCTIONS, Stage, checked_init_file, config_args, expand_matrices, load_plan,
                              publish_results, read_config, results_block, stage_argv, update_readme_results)

PLANS = [(paper, mode) for paper in ("avst", "divas", "sparsesync", "synchformer", "vocalist")
         for mode in ("toy", "full", "official")
         if mode in yaml.safe_load((REPRODUCTIONS / paper / "plan.yaml").read_text())]


def test_matrix_repeats_a_stage_per_value_and_fills_name_and_args():
    stages = expand_matrices([
        {"name": "train", "configs": ["a.yaml#x"]},
        {"name": "train_eval{len}", "matrix": {"len": [5, 15]}, "fit": False, "init_from": "train",
         "configs": ["a.yaml#x"], "args": ["--model.init_args.eval_window_frames", "{len}", "--data.init_args.root",
                                           "{data_root}/lrs2", "--model.init_args.arch_overrides", "{depth: 2}"]},
    ])
    assert [s["name"] for s in stages] == ["train", "train_eval5", "train_eval15"]
    assert stages[2]["args"] == ["--model.init_args.eval_window_frames", "15", "--data.init_args.root",
                                 "{data_root}/lrs2", "--model.init_args.arch_overrides", "{depth: 2}"]
    assert "matrix" not in stages[1] and stages[1]["init_from"] == "train"


def test_matrix_keys_combine_in_order_and_rows_zip_values():
    product = expand_matrices([{"name": "m{a}_{b}", "matrix": {"a": [1, 2], "b": ["x", "y"]}, "configs": []}])
    assert [s["name"] for s in product] == ["m1_x", "m1_y", "m2_x", "m2_y"]
    rows = expand_matrices([{"name": "e{len}", "configs": [], "args": ["{context}"],
                             "matrix": [{"len": 5, "context": 1}, {"len": 15, "context": 11}]}])
    assert [(s["name"], s["args"]) for s in rows] == [("e5", ["1"]), ("e15", ["11"])]


def test_stage_group_repeats_its_stages_together_and_nests_a_stage_matrix():
    stages = expand_matrices([{"matrix": {"depth": [1, 2]}, "stages": [
        {"name": "d{depth}", "configs": [], "args": ["{depth: {depth}}"]},
        {"name": "d{depth}_eval{len}", "init_from": "d{depth}", "fit": False, "configs": [],
         "matrix": {"len": [5, 15]}}]}])
    assert [s["name"] for s in stages] == ["d1", "d1_eval5", "d1_eval15", "d2", "d2_eval5", "d2_eval15"]
    assert stages[0]["args"] == ["{depth: 1}"] and stages[4]["init_from"] == "d2"
    with pytest.raises(ValueError, match="only matrix and stages"):
        expand_matrices([{"matrix": {"a": [1]}, "stages": [], "name": "x"}])


def test_a_plan_whose_matrix_repeats_a_name_is_refused(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "plan.yaml").write_text(yaml.safe_dump(
        {"toy": [{"name": "same", "matrix": {"len": [5, 7]}, "configs": []}]}))
    (tmp_path / "p" / "paper_numbers.yaml").write_text(yaml.safe_dump({"numbers": []}))
    with pytest.raises(ValueError, match="repeat"):
        load_plan("p", "toy", tmp_path)


def test_concern_entry_is_passed_as_its_yaml_and_a_missing_entry_is_named(tmp_path):
    (tmp_path / "model.yaml").write_text("cls3:\n  model:\n    init_args:\n      arch_overrides: {num_classes: 3}\n")
    (tmp_path / "whole.yaml").write_text("seed_everything: 1\n")
    args = config_args(["model.yaml#cls3", "whole.yaml"], tmp_path)
    assert args[0] == args[2] == "--config" and args[3] == str(tmp_path / "whole.yaml")
    assert yaml.safe_load(args[1]) == {"model": {"init_args": {"arch_overrides": {"num_classes": 3}}}}
    with pytest.raises(KeyError, match="no entry 'cls21'"):
        read_config("model.yaml#cls21", tmp_path)


@pytest.mark.parametrize(("paper", "mode"), PLANS, ids=lambda v: str(v))
def test_every_plan_stage_resolves_its_configs_and_starts_from_an_earlier_stage(paper, mode):
    stages, numbers, root = load_plan(paper, mode)
    names = [s.name for s in stages]
    for i, stage in enumerate(stages):
        assert "{" not in stage.name, stage.name  # every matrix key filled
        for ref in stage.configs:
            assert isinstance(read_config(ref, root), dict), f"{stage.name}: {ref}"
        assert stage.init_from in (None, *names[:i]), stage.name
        assert stage.fit or stage.init_from or stage.official, stage.name
        if stage.init_file:  # the shipped checkpoint is in the repository and is the one the plan names
            assert checked_init_file(stage, root).is_file(), stage.name
    for n in numbers:
        assert n.stage in (None, *names), (paper, mode, n.stage)


def test_the_gate_entries_resolve_their_configs():
    from avsync.gate import BASELINES, load_entries

    for entry in load_entries():
        for ref in entry.configs:
            assert isinstance(read_config(ref, BASELINES.parent), dict), f"{entry.name}: {ref}"


@pytest.mark.parametrize("paper", sorted(p.parent.name for p in REPRODUCTIONS.glob("*/README.md")))
def test_readme_results_tables_are_generated_from_the_committed_results(paper):
    readme = (REPRODUCTIONS / paper / "README.md").read_text()
    if "<!-- results:" not in readme:
        assert not list((REPRODUCTIONS / paper / "results").glob("*.csv")), f"{paper}: results without a README table"
        return
    assert update_readme_results(REPRODUCTIONS / paper, check=True) == [], \
        f"reproductions/{paper}/README.md: a generated results table differs from results/*.csv"


def test_publish_copies_the_table_and_regenerates_the_readme(tmp_path):
    paper = tmp_path / "avst"
    (paper / "results").mkdir(parents=True)
    shutil.copy(REPRODUCTIONS / "avst" / "results" / "toy.csv", paper / "results" / "toy.csv")
    (paper / "README.md").write_text("intro\n<!-- results:toy -->\nhand-copied\n<!-- /results -->\nafter\n")
    run = tmp_path / "run"
    run.mkdir()
    with open(REPRODUCTIONS / "avst" / "results" / "toy.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rows[0]["toy"] = "12.34"
    with open(run / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert update_readme_results(paper, check=True) == ["toy"]  # the hand-copied block is caught
    publish_results(run, paper, "toy")
    text = (paper / "README.md").read_text()
    assert text.startswith("intro\n<!-- results:toy -->\n| table |") and text.endswith("<!-- /results -->\nafter\n")
    assert "| 70.2 | 12.3 |" in text and text.count("\n| 2 |") == 24
    assert results_block(paper / "results" / "toy.csv") in text


def test_stage_from_a_matrix_is_an_ordinary_stage():
    stages, _, _ = load_plan("avst", "toy")
    stage = next(s for s in stages if s.name == "dense_fixed5_depth2_eval")
    assert isinstance(stage, Stage) and not stage.fit and stage.init_from == "dense_fixed5_depth2"
    assert stage.args[:4] == ["--model.init_args.train_frames", "[5]", "--model.init_args.arch_overrides", "{depth: 2}"]


def test_a_shipped_init_file_is_passed_after_its_checksum_is_checked(tmp_path):
    (tmp_path / "w.pt").write_bytes(b"weights")
    sha = hashlib.sha256(b"other weights").hexdigest()
    good = Stage(name="s", configs=[], init_file="w.pt", init_sha256=hashlib.sha256(b"weights").hexdigest())
    args = stage_argv(good, tmp_path, tmp_path / "out", {}, None)
    assert args[-2:] == ["--model.init_args.init_from", str((tmp_path / "w.pt").resolve())]
    with pytest.raises(ValueError, match=r"w\.pt has sha256 .* the plan expects " + sha):
        stage_argv(Stage(name="s", configs=[], init_file="w.pt", init_sha256=sha), tmp_path, tmp_path, {}, None)
    with pytest.raises(FileNotFoundError, match=r"stage s: init_file .*missing\.pt does not exist"):
        checked_init_file(Stage(name="s", configs=[], init_file="missing.pt", init_sha256=sha), tmp_path)


def test_an_init_file_needs_its_checksum_and_excludes_an_earlier_stage():
    with pytest.raises(ValueError, match="needs its init_sha256"):
        Stage(name="s", configs=[], init_file="w.pt")
    with pytest.raises(ValueError, match="excludes init_from"):
        Stage(name="s", configs=[], init_file="w.pt", init_sha256="0" * 64, init_from="t")
    with pytest.raises(ValueError, match="excludes init_from"):
        Stage(name="s", configs=[], init_file="w.pt", init_sha256="0" * 64, fit=False)
