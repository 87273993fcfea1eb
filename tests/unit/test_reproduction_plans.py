"""Every reproduction plan is well formed: one test per paper and plan section (toy / full /
official), on the stage list ``avsync.reproduce.load_plan`` gives the runner (so whatever the plan
file's own shorthand, the stages checked are the stages run).

A stage's configs exist, it starts only from an earlier stage, a stage that does not train
evaluates something (an earlier checkpoint or the authors' weights), the authors'-weights stages
live in the ``official`` section only; every paper number names a stage of that section that
tests (or, outside ``official``, says why it has none), and every ``official`` stage fills a number.
Paper-specific facts (parameter counts, recipes, the number of table cells) stay in each paper's
tests."""
import pytest

from avsync.reproduce import MODES, REPRODUCTIONS, load_plan, read_config


def _plans() -> list[tuple[str, str]]:
    found = []
    for plan_file in sorted(REPRODUCTIONS.glob("*/plan.yaml")):
        for mode in MODES:
            try:
                load_plan(plan_file.parent.name, mode)
            except SystemExit:  # the plan has no such section
                continue
            found.append((plan_file.parent.name, mode))
    return found


PLANS = _plans()
# sections whose every paper number is reproduced by one of their stages
EVERY_NUMBER_REPRODUCED = {("sparsesync", "toy"), ("sparsesync", "full"), ("avst", "full")}
# SparseSync's numbers file names no dataset / split per cell (its README's tables say them)
NO_DATASET_COLUMNS = {"sparsesync"}


def test_every_paper_has_a_plan():
    assert {paper for paper, _ in PLANS} >= {"sparsesync", "avst", "divas", "synchformer", "vocalist"}
    assert {mode for _, mode in PLANS} == set(MODES)


@pytest.mark.parametrize(("paper", "mode"), PLANS, ids=[f"{p}-{m}" for p, m in PLANS])
def test_plan_stages_and_paper_numbers_are_consistent(paper, mode):
    stages, numbers, root = load_plan(paper, mode)
    names = [s.name for s in stages]
    assert stages and len(names) == len(set(names)), f"{paper} {mode}: stage names repeat"
    for i, stage in enumerate(stages):
        for cfg in stage.configs:  # a whole file, or one entry (path#entry) of a concern file
            assert read_config(cfg, root), f"{paper} {mode} {stage.name}: config {cfg} missing or empty"
        assert stage.init_from in (None, *names[:i]), f"{stage.name} starts from a later or unknown stage"
        assert stage.fit or stage.init_from or stage.official, f"{stage.name} evaluates nothing"
        assert (stage.official is not None) == (mode == "official"), \
            f"{stage.name}: the authors' weights are tested in the official section only"

    tested = {s.name for s in stages if s.test}
    for n in numbers:
        assert n.metric.startswith("test/"), n
        assert n.stage is None or n.stage in tested, f"{n.setting}: {n.stage} is no tested stage of {mode}"
        if paper not in NO_DATASET_COLUMNS:
            assert n.dataset and n.split, n
        if (paper, mode) in EVERY_NUMBER_REPRODUCED:  # or the row says why the toy plan leaves it out
            assert n.stage is not None or (mode == "toy" and n.note.startswith("toy: not run")), n
        elif mode != "official":
            assert n.stage is not None or n.note, f"{n.setting}: a cell not reproduced says why"
    if mode == "official":  # each authors'-weights stage is there to fill a paper number
        assert {n.stage for n in numbers if n.stage} == set(names)
