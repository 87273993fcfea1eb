"""The reproduction runner's test-only "authors' weights" stages (``official: <name>``, ``--weights
official``): at toy scale, a random-init network saved in the authors' layout stands for the published
file; the stage converts it through ``avsync.weights`` and tests it without fitting. The plans' own
``official`` stages are checked to name catalog entries and to line up with paper numbers."""
import csv
import json
import shutil

import pytest
import torch
import yaml

from avsync.convert.synthetic_weights import read_layout
from avsync.papers.syncnet.module import SyncNetModule
from avsync.papers.syncnet.network import build_syncnet
from avsync.reproduce import REPRODUCTIONS, Stage, load_plan, main, read_config, stage_cli_args
from avsync.weights import catalog
from avsync.weights.catalog import OfficialWeights
from support.cli_overrides import cli_overrides

TOY_DATA = cli_overrides(data={"num_train": 4, "num_valid": 2, "num_test": 3, "batch_size": 3, "num_workers": 0},
                         trainer={"limit_test_batches": 1})
ENTRY = OfficialWeights(name="syncnet-toy-random", paper="test", dataset="none (random init)",
                        filename="syncnet_toy_authors.model", url=None, checksum=None, model="syncnet",
                        arch="syncnet_toy", source="tests/integration/test_reproduce_official.py")


def _plan(tmp_path, toy_root):
    plans = tmp_path / "plans"
    shutil.copytree(REPRODUCTIONS / "vocalist" / "configs", plans / "mini" / "configs")
    shutil.copy(REPRODUCTIONS / "trainer.yaml", plans / "trainer.yaml")
    configs = ["../trainer.yaml#vocalist_toy", "configs/data.yaml#toy_speech", "configs/model.yaml#toy_syncnet",
               "configs/model.yaml#lrs2_protocol"]
    plan = {"toy": [], "official": [
        {"name": "syncnet_authors", "official": ENTRY.name, "configs": configs,
         "args": ["--data.init_args.root", str(toy_root), *TOY_DATA]}]}
    numbers = {"numbers": [{"table": "1", "setting": "SyncNet, 5 frames", "metric": "test/acc_tol_5f", "value": 75.8,
                            "toy_stage": None, "official_stage": "syncnet_authors"}]}
    (plans / "mini" / "plan.yaml").write_text(yaml.safe_dump(plan))
    (plans / "mini" / "paper_numbers.yaml").write_text(yaml.safe_dump(numbers))
    return plans


def test_official_stage_tests_the_converted_authors_file_without_fitting(tmp_path, tmp_path_factory, repo_root_cwd,
                                                                         monkeypatch, capsys):
    monkeypatch.setenv("AVSYNC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(catalog.OFFICIAL_WEIGHTS, ENTRY.name, ENTRY)
    torch.manual_seed(7)
    authors = build_syncnet("syncnet_toy").state_dict()  # SyncNet's official layout is ours (identity map)
    (tmp_path / "cache" / "weights").mkdir(parents=True)
    torch.save(authors, tmp_path / "cache" / "weights" / ENTRY.filename)
    loaded = []
    original = SyncNetModule.on_load_checkpoint

    def record(self, checkpoint):  # what trainer.test restored into the module
        loaded.append((checkpoint.get("official_weights", {}).get("name"),
                       torch.equal(checkpoint["state_dict"]["net.netfcaud.3.weight"], authors["netfcaud.3.weight"])))
        return original(self, checkpoint)

    monkeypatch.setattr(SyncNetModule, "on_load_checkpoint", record)
    plans, out = _plan(tmp_path, tmp_path_factory.mktemp("toy")), tmp_path / "out"
    status = main(["mini", "--plans", str(plans), "--out", str(out), "--data-root", "unused", "--weights", "official"])
    assert loaded == [(ENTRY.name, True)], "the stage tested the converted authors' weights"
    result = json.loads((out / "syncnet_authors" / "result.json").read_text())
    assert result["official_weights"] == ENTRY.name and result["log_dir"] is None
    assert result["checkpoint"].endswith("weights/syncnet-toy-random.avsync.pt")
    assert 0.0 <= result["test"]["test/acc_tol_5f"] <= 1.0
    assert not (out / "syncnet_authors" / "final.ckpt").exists(), "nothing was fit"
    table = (out / "results.md").read_text()
    assert "Authors' weights" in table and "this run (authors' weights)" in table
    # random weights are far from the paper: the tolerance gate applies to the authors' column too
    assert status == 1 and "outside tolerance" in capsys.readouterr().out


def test_full_table_has_an_authors_weights_column(tmp_path, tmp_path_factory, repo_root_cwd, monkeypatch):
    """The full table shows each paper number's ``official_stage`` result beside the trained value,
    whichever of the two runs finishes second; the toy official stage tests a converted random-init
    file (as above), the trained stage is a finished result the runner resumes from."""
    monkeypatch.setenv("AVSYNC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(catalog.OFFICIAL_WEIGHTS, ENTRY.name, ENTRY)
    torch.manual_seed(7)
    (tmp_path / "cache" / "weights").mkdir(parents=True)
    torch.save(build_syncnet("syncnet_toy").state_dict(), tmp_path / "cache" / "weights" / ENTRY.filename)
    plans = _plan(tmp_path, tmp_path_factory.mktemp("toy"))
    plan = yaml.safe_load((plans / "mini" / "plan.yaml").read_text())
    plan["full"] = [{"name": "syncnet_trained", "configs": plan["official"][0]["configs"]}]
    (plans / "mini" / "plan.yaml").write_text(yaml.safe_dump(plan))
    numbers = yaml.safe_load((plans / "mini" / "paper_numbers.yaml").read_text())
    numbers["numbers"][0]["full_stage"] = "syncnet_trained"
    (plans / "mini" / "paper_numbers.yaml").write_text(yaml.safe_dump(numbers))
    runs = tmp_path / "runs"
    (runs / "mini_full" / "syncnet_trained").mkdir(parents=True)
    (runs / "mini_full" / "syncnet_trained" / "result.json").write_text(json.dumps(
        {"stage": "syncnet_trained", "checkpoint": "", "test": {"test/acc_tol_5f": 0.731}, "seconds": 1.0}))

    main(["mini", "--plans", str(plans), "--out", str(runs / "mini_official"), "--data-root", "unused",
          "--weights", "official"])  # finishes second: rewrites the full table
    authors = json.loads((runs / "mini_official" / "syncnet_authors" / "result.json").read_text())
    authors_cell = f"{100 * authors['test']['test/acc_tol_5f']:.1f}"
    header, _, row = [line for line in (runs / "mini_full" / "results.md").read_text().splitlines()
                      if line.startswith("|")][:3]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert "| this run (full) | difference | authors' weights |" in header
    assert cells[3:7] == ["75.8", "73.1", "-2.7", authors_cell]
    (runs / "mini_full" / "results.md").unlink()
    assert main(["mini", "--plans", str(plans), "--out", str(runs / "mini_full"), "--data-root", "unused"]) == 1
    assert f"| -2.7 | {authors_cell} |" in (runs / "mini_full" / "results.md").read_text()  # full finishes second
    with open(runs / "mini_full" / "results.csv") as f:
        assert float(next(csv.DictReader(f))["authors' weights"]) == pytest.approx(float(authors_cell), abs=0.05)


def test_official_needs_a_data_root_and_excludes_init_from():
    with pytest.raises(SystemExit):
        main(["synchformer", "--weights", "official"])
    with pytest.raises(ValueError, match="exclude each other"):
        Stage(name="x", configs=[], official="syncnet-v2", init_from="y")
    assert Stage(name="x", configs=[], official="syncnet-v2").fit is False


@pytest.mark.parametrize("paper", ["sparsesync", "synchformer", "vocalist"])
def test_plans_official_stages_name_catalog_weights_with_a_converter(paper):
    stages, _, root = load_plan(paper, "official")
    numbers = yaml.safe_load((REPRODUCTIONS / paper / "paper_numbers.yaml").read_text())["numbers"]
    names = {s.name for s in stages}
    for stage in stages:
        entry = catalog.get(stage.official)
        assert entry.model is not None and stage.init_from is None and stage.fit is False
        assert all(read_config(c, root) for c in stage.configs)
    cited = {n["official_stage"] for n in numbers if n.get("official_stage")}
    assert cited == names, "every official stage fills a paper number and every cited stage exists"


def _meta_official_state(family: str) -> dict[str, torch.Tensor]:
    """The authors' key names and shapes (shared/spec/official_state_dicts, written from their code), no data."""
    from conftest import SHARED

    layout = read_layout(SHARED / "spec" / "official_state_dicts" / f"{family}.json")
    return {k: torch.empty(shape, device="meta") for k, shape in layout.items()}


@pytest.mark.parametrize(("paper", "stage_name", "family"), [
    ("sparsesync", "lrs3_full_21cls_authors", "sparsesync"),
    ("vocalist", "lrs2_vocalist_authors", "vocalist"),
    ("synchformer", "lrs3_authors", "synchformer"),  # 237M parameters built on the CPU: ~10 s
])
def test_official_stage_configs_build_exactly_the_authors_layout(paper, stage_name, family, repo_root_cwd):
    """``trainer.test(ckpt_path=<converted>)`` loads strictly into the module the stage's configs build:
    so that module's whole state must be the converted authors' state dict, key for key, shape for shape."""
    from avsync.cli import cli_main
    from avsync.registry import get_converter

    stages, _, root = load_plan(paper, "official")
    stage = next(s for s in stages if s.name == stage_name)
    args = stage_cli_args(stage, root, "/nonexistent")
    cli = cli_main(args + ["--trainer.precision", "32", "--trainer.accelerator", "cpu"], run=False)
    converted = get_converter(family).checkpoint_filter_fn(_meta_official_state(family))
    assert {k: tuple(v.shape) for k, v in cli.model.state_dict().items()} == \
        {f"net.{k}": tuple(v.shape) for k, v in converted.items()}
