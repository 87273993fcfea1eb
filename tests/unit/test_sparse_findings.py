"""reproductions/sparsesync/sparse_findings.py: each sparse finding over seeds, shown or not, from the results."""
import importlib.util
import json

from avsync.reproduce import REPRODUCTIONS

COUNTS = [19, 34, 43]  # the 96 test windows on -1 / 0 / +1 s: a constant guess scores at most 44.8 %


def _module():
    spec = importlib.util.spec_from_file_location("sparse_findings", REPRODUCTIONS / "sparsesync" / "sparse_findings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(tmp_path, stage, acc):
    (tmp_path / stage).mkdir()
    (tmp_path / stage / "result.json").write_text(json.dumps({
        "stage": stage, "test": {"test/acc@1": acc}, "breakdown": {"per_offset": {"count": COUNTS}}}))


def _table(tmp_path, accs: dict) -> str:
    for stage, acc in accs.items():
        _write(tmp_path, stage, acc)
    f = _module()
    return "\n".join(f.findings(f.load(tmp_path)))


def test_paper_findings_shown_when_every_seed_agrees(tmp_path):
    text = _table(tmp_path, {
        "sparse_3cls_len5": 80 / 96, "sparse_3cls_len5_nosel": 70 / 96,
        "sparse_3cls_len5_s2": 82 / 96, "sparse_3cls_len5_nosel_s2": 72 / 96,
        "sparse_3cls_len2": 50 / 96, "sparse_3cls_len2_s2": 56 / 96,
        "sparse_3cls_len3": 60 / 96, "sparse_3cls_len3_s2": 62 / 96})
    rows = text.splitlines()[2:]
    assert len(rows) == 3 and all(row.endswith("**shown** |") for row in rows)
    assert "seed 1337: 83.3 vs 72.9 %" in text and "ahead in 2 of 2 seeds" in text
    assert "seed mean 55.2 / 63.5 / 84.4 %" in text


def test_a_constant_guess_a_tie_and_a_dip_are_not_findings(tmp_path):
    text = _table(tmp_path, {
        # the majority offset's share (43 of 96) is not "above chance", though it beats 1/3
        "sparse_3cls_len5": 43 / 96, "sparse_3cls_len5_nosel": 43 / 96,
        "sparse_3cls_len5_s2": 80 / 96, "sparse_3cls_len5_nosel_s2": 81 / 96,
        "sparse_3cls_len3": 70 / 96, "sparse_3cls_len3_s2": 85 / 96})
    rows = text.splitlines()[2:]
    assert len(rows) == 3 and all(row.endswith("**not shown** |") for row in rows)


def test_one_seed_shows_nothing(tmp_path):
    text = _table(tmp_path, {"sparse_3cls_len5": 85 / 96, "sparse_3cls_len5_nosel": 60 / 96})
    assert all(row.endswith("**not shown** |") for row in text.splitlines()[2:])


def test_selectors_ahead_of_a_model_at_chance_is_not_a_finding(tmp_path):
    # the fresh-clone run's pattern: both at chance, the selector model ahead by noise in both seeds
    text = _table(tmp_path, {"sparse_3cls_len5": 35 / 96, "sparse_3cls_len5_nosel": 34 / 96,
                             "sparse_3cls_len5_s2": 25 / 96, "sparse_3cls_len5_nosel_s2": 19 / 96})
    rows = text.splitlines()[2:]
    assert "ahead in 2 of 2 seeds" in rows[1] and rows[1].endswith("**not shown** |")
