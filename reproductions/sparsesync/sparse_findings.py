"""SparseSync's sparse findings, checked over seeds on a finished run of the toy plan.

``make reproduce-sparsesync`` runs ``reproductions/sparsesync/plan.yaml``, whose 3-class sparse stages
``sparse_3cls_len{L}{variant}`` start from the shipped toy sparse pre-training (README, section 10), and
then this script on ``runs/reproduce/sparsesync``; ``make reproduce-sparsesync-sparse`` re-makes that
pre-training (stage 0 -> 0b -> 0c at 64 px) and runs the same stages over its own 0c. The script reads
the stages' ``result.json`` files and states, with the figures, whether each of the paper's sparse
findings shows at toy scale:

1. SparseSync on sparse data is above chance (Table 2, VGGSound-Sparse 3 classes: 60.3 %): every
   seed's 5 s test accuracy beats both uniform chance and the best constant guess (the test set's
   majority offset) with a one-sided binomial p < 0.01;
2. selectors ahead of a plain transformer over all tokens at equal steps (the paper's ablation):
   the selector models are above chance (finding 1) and ahead in every seed, by at least
   ``MIN_GAIN`` points on average (two models at chance differ by noise, not by selectors);
3. accuracy rises with input length (Table 4): the seed-mean accuracy rises at every step between
   the lengths run (2 -> 3 -> ... s), over the seeds run at every length.

    python reproductions/sparsesync/sparse_findings.py [runs/reproduce/sparsesync] > findings.md
"""
from __future__ import annotations

import json
import re
import sys
from math import comb
from pathlib import Path

STAGE = re.compile(r"^sparse_3cls_len(?P<len>\d+)(?P<nosel>_nosel)?(?:_s(?P<seed>\d+))?$")
PAPER = {"above chance": "Table 2, 3 classes, 5 s: 60.3 %",
         "lengths": "Table 4: 55.6 / 59.4 / 60.8 / 60.3 / 61.2 / 62.9 % at 2 / 3 / 4 / 5 / 6 / 7 s"}
MIN_GAIN, ALPHA = 2.0, 0.01


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return sum(comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def load(out: Path) -> dict[tuple[int, bool, int], dict]:
    """(length, selectors, seed) -> {'acc': %, 'n': windows, 'hits': correct, 'majority': %}."""
    runs = {}
    for path in sorted(out.glob("sparse_3cls_len*/result.json")):
        result = json.loads(path.read_text())
        m = STAGE.match(result["stage"])
        if not m or not result.get("test"):
            continue
        counts = result["breakdown"]["per_offset"]["count"]
        n, acc = sum(counts), result["test"]["test/acc@1"]
        runs[(int(m["len"]), not m["nosel"], int(m["seed"] or 1337))] = {
            "acc": 100 * acc, "n": n, "hits": round(acc * n), "majority": 100 * max(counts) / n}
    return runs


def findings(runs: dict) -> list[str]:
    lines = ["| finding (paper) | toy, per seed | status |", "|---|---|---|"]
    at5 = {seed: r for (length, sel, seed), r in runs.items() if length == 5 and sel}
    above_chance = False
    if at5:
        cells, ok = [], True
        for seed, r in sorted(at5.items()):
            p_chance = binomial_sf(r["hits"], r["n"], 1 / 3)
            p_major = binomial_sf(r["hits"], r["n"], r["majority"] / 100)
            ok &= p_chance < ALPHA and p_major < ALPHA
            cells.append(f"seed {seed}: {r['acc']:.1f} % ({r['hits']}/{r['n']}; p = {p_chance:.1g} vs 33.3 %, "
                         f"{p_major:.1g} vs the majority offset's {r['majority']:.1f} %)")
        above_chance = ok and len(at5) >= 2
        lines.append(f"| above chance on sparse data, 3 cls, 5 s ({PAPER['above chance']}) | {'; '.join(cells)} | "
                     f"**{'shown' if above_chance else 'not shown'}** |")
    pairs = [(seed, runs[(5, True, seed)]["acc"], runs[(5, False, seed)]["acc"])
             for seed in sorted(at5) if (5, False, seed) in runs]
    if pairs:
        gains = [a - b for _, a, b in pairs]
        mean = sum(gains) / len(gains)
        ok = above_chance and len(pairs) >= 2 and all(g > 0 for g in gains) and mean >= MIN_GAIN
        cells = "; ".join(f"seed {s}: {a:.1f} vs {b:.1f} %" for s, a, b in pairs)
        lines.append(f"| selectors ahead of a plain transformer over all tokens, 300 steps each | {cells}; "
                     f"mean gain {mean:+.1f} points, ahead in {sum(g > 0 for g in gains)} of {len(gains)} seeds | "
                     f"**{'shown' if ok else 'not shown'}** |")
    lengths = sorted({length for (length, sel, _) in runs if sel})
    if len(lengths) >= 2:
        # seeds run at every length, so each mean is over the same models' seeds
        seeds = sorted(set.intersection(*({seed for (L, sel, seed) in runs if sel and L == length}
                                          for length in lengths)))
        means = [sum(runs[(L, True, s)]["acc"] for s in seeds) / len(seeds) for L in lengths]
        per_seed = "; ".join(f"seed {s}: " + " / ".join(
            f"{runs[(L, True, s)]['acc']:.1f}" if (L, True, s) in runs else "—" for L in lengths) for s in seeds)
        ok = all(b > a for a, b in zip(means, means[1:]))
        lines.append(f"| accuracy rises with input length ({PAPER['lengths']}) | "
                     f"{' / '.join(f'{L} s' for L in lengths)}: {per_seed}; seed mean "
                     f"{' / '.join(f'{m:.1f}' for m in means)} % | **{'shown' if ok and len(seeds) >= 2 else 'not shown'}** |")
    return lines


def main(argv: list[str] | None = None) -> None:
    out = Path((argv or sys.argv[1:] or ["runs/reproduce/sparsesync"])[0])
    runs = load(out)
    if not runs:
        raise SystemExit(f"{out}: no finished sparse_3cls_len* stage (run make reproduce-sparsesync first)")
    print(f"# SparseSync's sparse findings at toy scale ({out})\n")
    print("Toy numbers: a narrow SparseSync on the embedded synthetic sparse set at 64 px, not the "
          "paper's VGGSound-Sparse; 3 classes (-1 / 0 / +1 s).\n")
    print("\n".join(findings(runs)))


if __name__ == "__main__":
    main()
