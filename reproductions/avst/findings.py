"""AVST's qualitative findings, checked on a finished reproduction run (toy or full).

``avsync reproduce avst`` writes the paper-vs-run table; this script reads the same stage results
(``<out>/<stage>/result.json``) and states, with the figures, whether each finding the toy data
can show holds:

1. accuracy rises with clip length (Table 2 enc-mp, Table 5 enc-mp and dec);
2. enc-mp >= enc on dense clips (Table 2: the paper's gap of 6-7 points);
3. dec >= enc-mp on sparse clips (Table 5: general sounds);
4. a masked frame costs more at 5 frames than at 15 (Table 4), and deeper is not worse (Table 3);
   both on the fixed-5-frame models of §4.4 (`dense_fixed5_*`).

It also prints every evaluation stage's accuracy on in-sync clips (the paper's protocol) next to
the accuracy on clips at random offsets, which a model that always answers 0 cannot pass.

    python reproductions/avst/findings.py [runs/reproduce/avst] > findings.md
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

IN_SYNC, RANDOM = "test/acc_tol_in_sync", "test/acc_tol_random_offset"
DENSE_LENGTHS, SPARSE_LENGTHS = (5, 7, 9, 11, 13, 15), (10, 15, 20, 25, 30)
SPARSE_FRAME_STEP = 5  # Table 5 feeds every 5th frame: N fed frames are 5N decoded ones
# chance of the score search (31 shifts): 3 correct with +-1 frame (speech), 11 with +-5 (general sounds);
# a model whose mean accuracy is within MARGIN points of chance shows no finding either way
CHANCE = {"dense": 100 * 3 / 31, "sparse": 100 * 11 / 31}
MARGIN = 10.0


def load_results(out: Path) -> dict[str, dict[str, float]]:
    """stage name -> its test metrics (stages without a test are left out)."""
    results = {}
    for path in sorted(out.glob("*/result.json"), key=_plan_order):
        result = json.loads(path.read_text())
        if result.get("test"):
            results[result["stage"]] = result["test"]
    return results


def _plan_order(path: Path) -> str:
    return path.parent.name


def _metric(metric: str, prefix: str, n: int) -> str:
    """The metric of the N-frame column in a model's one evaluation pass (``<prefix>_eval``): the
    shortest length has the plain name, the others ``_len{frames}`` (decoded frames)."""
    sparse = prefix.startswith("sparse")
    first, frames = (SPARSE_LENGTHS[0], n * SPARSE_FRAME_STEP) if sparse else (DENSE_LENGTHS[0], n)
    return metric if n == first else f"{metric}_len{frames}"


def curve(results: dict, prefix: str, lengths: tuple[int, ...], metric: str = IN_SYNC) -> list[float | None]:
    test = results.get(f"{prefix}_eval", {})
    return [None if _metric(metric, prefix, n) not in test else 100 * test[_metric(metric, prefix, n)]
            for n in lengths]


def mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _fmt(values) -> str:
    return ", ".join("—" if v is None else f"{v:.1f}" for v in values)


def rises(values: list[float | None]) -> bool | None:
    """Longest clip beats the shortest and the trend is up (more rises than falls between neighbours)."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return None
    steps = [b - a for a, b in zip(known, known[1:])]
    return known[-1] > known[0] and sum(s > 0 for s in steps) >= sum(s < 0 for s in steps)


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("**holds**" if ok else "**does not hold**")


def at_chance(values: list[float | None], prefix: str) -> str:
    """'' if the model learnt something, else why its curve cannot show a finding."""
    chance, m = CHANCE[prefix.split("_")[0]], mean(values)
    if m is None or m > chance + MARGIN:
        return ""
    return f"not shown: {prefix} is at chance level (mean {m:.1f} %, chance {chance:.1f} %)"


def findings(results: dict) -> list[str]:
    lines = []
    for name, prefix, lengths in (("dense enc-mp", "dense_enc_mp", DENSE_LENGTHS),
                                  ("dense dec", "dense_dec", DENSE_LENGTHS),
                                  ("dense enc", "dense_enc", DENSE_LENGTHS),
                                  ("sparse enc-mp", "sparse_enc_mp", SPARSE_LENGTHS),
                                  ("sparse dec", "sparse_dec", SPARSE_LENGTHS)):
        values = curve(results, prefix, lengths)
        state = at_chance(values, prefix) or verdict(rises(values))
        lines.append(f"- Accuracy rises with clip length ({name}, {lengths[0]}-{lengths[-1]} frames: "
                     f"{_fmt(values)}): {state}.")
    for claim, better, worse, lengths in (("enc-mp >= enc on the dense set", "dense_enc_mp", "dense_enc", DENSE_LENGTHS),
                                          ("dec >= enc-mp on the sparse set", "sparse_dec", "sparse_enc_mp", SPARSE_LENGTHS)):
        va, vb = curve(results, better, lengths), curve(results, worse, lengths)
        a, b = mean(va), mean(vb)
        ok = None if a is None or b is None else a >= b
        figures = "" if ok is None else f" (mean over lengths {a:.1f} vs {b:.1f})"
        state = ("; ".join(filter(None, (at_chance(va, better), at_chance(vb, worse)))) or verdict(ok)) if ok is not None \
            else verdict(None)
        lines.append(f"- {claim}{figures}: {state}.")
    for m in ("audio", "video", "both"):  # the fixed-5-frame models of Tables 3-4: masked vs unmasked, same depth
        plain = curve(results, "dense_fixed5_depth2", (5, 15))
        masked = curve(results, f"dense_fixed5_mask_{m}", (5, 15))
        ok = None
        if None not in plain + masked:
            ok = (plain[0] - masked[0]) >= (plain[1] - masked[1])
            lines.append(f"- Masking one frame of {m if m != 'both' else 'audio and video'} costs more at 5 frames than at 15 (drop {plain[0] - masked[0]:+.1f} "
                         f"vs {plain[1] - masked[1]:+.1f} points): {verdict(ok)}.")
    depths = [mean(curve(results, p, (5, 15))) for p in ("dense_fixed5_depth1", "dense_fixed5_depth2", "dense_fixed5_depth3")]
    if None not in depths:
        ok = depths[0] <= depths[1] <= depths[2]
        lines.append(f"- Accuracy increases with depth 1 -> 2 -> 3 (mean of 5 and 15 frames: {_fmt(depths)}): {verdict(ok)}.")
    return lines


def stage_table(results: dict) -> list[str]:
    lines = ["| stage | length | in-sync clips (paper protocol) | clips at random offsets |", "|---|---|---|---|"]
    for name, test in results.items():
        prefix = name.removesuffix("_eval")
        for n in SPARSE_LENGTHS if prefix.startswith("sparse") else DENSE_LENGTHS:
            in_sync, other = _metric(IN_SYNC, prefix, n), _metric(RANDOM, prefix, n)
            if in_sync in test:
                shown = f"{100 * test[other]:.1f}" if other in test else "—"
                lines.append(f"| {name} | {n} | {100 * test[in_sync]:.1f} | {shown} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "runs/reproduce/avst")
    results = load_results(out)
    if not results:
        print(f"no tested stages under {out}", file=sys.stderr)
        return 1
    print("\n".join(["## Findings", "", *findings(results), "", "## Accuracy per stage (%)", "", *stage_table(results)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
