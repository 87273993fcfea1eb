"""VocaLiST's qualitative findings, checked on a finished toy reproduction run.

``avsync reproduce vocalist`` writes the paper-vs-run table; this script reads the same stage results
(``<out>/<stage>/result.json``) and states, with the figures, whether each finding holds:

1. accuracy rises with the context length (Table 1, speech, +-1 frame);
2. singing is harder than speech at equal context (Table 2 vs the same model and protocol on speech);
3. a longer context helps more for singing than for speech (Table 2: "the increase of the context
   window size supposes a larger improvement, compared to the speech case");
4. speech-trained vs singing-trained models on singing (the paper: LRS2-trained VocaLiST >= the
   Acappella-trained one at long contexts, 81.2 vs 80.5 at 25 frames).

A model whose mean accuracy is within ``MARGIN`` points of the score search's chance shows no
finding either way (it is reported as at chance). Findings 2-4 are checked for VocaLiST and for
SyncNet (the toy plan trains both on speech and on singing).

    python reproductions/vocalist/findings.py [runs/reproduce/vocalist] > findings.md
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

SPEECH_CONTEXTS, SINGING_CONTEXTS = (5, 7, 9, 11, 13, 15), (5, 10, 15, 20, 25)
# chance of the score search over 31 shifts: 3 candidates are correct at +-1 frame, 11 at +-5
CHANCE = {1: 100 * 3 / 31, 5: 100 * 11 / 31}
MARGIN = 10.0
# model families of the toy plan: Table 2 findings are checked for each (label, stage-name key)
FAMILIES = (("VocaLiST", "vocalist"), ("SyncNet", "syncnet"))


def load_results(out: Path) -> dict[str, dict[str, float]]:
    """stage name -> its test metrics in percent (stages without a test are left out)."""
    results = {}
    for path in sorted(out.glob("*/result.json")):
        result = json.loads(path.read_text())
        if result.get("test"):
            results[result["stage"]] = {k: 100 * v for k, v in result["test"].items()}
    return results


def row(results: dict, stage: str, contexts: tuple[int, ...]) -> list[float] | None:
    if stage not in results:
        return None
    return [results[stage].get(f"test/acc_tol_{n}f") for n in contexts]


def _fmt(values) -> str:
    return " | ".join("—" if v is None else f"{v:.1f}" for v in values)


def _learned(values: list[float], tolerance: int) -> bool:
    return sum(values) / len(values) > CHANCE[tolerance] + MARGIN


def findings(results: dict) -> list[str]:
    out = ["# VocaLiST reproduction: findings at toy scale", "",
           f"Chance of the score search: {CHANCE[1]:.1f} % at ±1 frame, {CHANCE[5]:.1f} % at ±5 frames; a model "
           f"within {MARGIN:.0f} points of chance shows no finding.", ""]
    out += ["## 1. Accuracy rises with context (Table 1, speech, ±1 frame)", "",
            "| model | " + " | ".join(f"{n} fr" for n in SPEECH_CONTEXTS) + " | verdict |",
            "|---|" + "---|" * (len(SPEECH_CONTEXTS) + 1)]
    for stage, label in (("speech_syncnet", "SyncNet (toy)"), ("speech_vocalist", "VocaLiST (toy)")):
        values = row(results, stage, SPEECH_CONTEXTS)
        if values is None:
            out.append(f"| {label} | not run |" + " |" * len(SPEECH_CONTEXTS))
            continue
        if not _learned(values, 1):
            verdict = "at chance: no finding"
        else:
            verdict = "holds" if values[-1] > values[0] else "does not hold"
        out.append(f"| {label} | {_fmt(values)} | {verdict} |")

    out += ["", "## Table 2 protocol (±5 frames, 5–25 frame contexts)", "",
            "| model | tested on | " + " | ".join(f"{n} fr" for n in SINGING_CONTEXTS) + " |",
            "|---|---|" + "---|" * len(SINGING_CONTEXTS)]
    for label, key in FAMILIES:
        for trained, where, stage in (("speech", "speech", f"speech_{key}_on_speech_tol5"),
                                      ("speech", "singing", f"speech_{key}_on_singing"),
                                      ("singing", "singing", f"singing_{key}")):
            values = row(results, stage, SINGING_CONTEXTS)
            out.append(f"| {label} trained on {trained} | {where} | "
                       + (_fmt(values) if values else "not run" + " |" * 4) + " |")
    for label, key in FAMILIES:
        out += table2_findings(results, label, key, row(results, f"speech_{key}", SPEECH_CONTEXTS))
    return out


def table2_findings(results: dict, label: str, key: str, speech: list[float] | None) -> list[str]:
    """Findings 2-4 for one model family (stages speech_<key>_on_singing, speech_<key>_on_speech_tol5,
    singing_<key>)."""
    on_singing = row(results, f"speech_{key}_on_singing", SINGING_CONTEXTS)
    on_speech = row(results, f"speech_{key}_on_speech_tol5", SINGING_CONTEXTS)
    sung = row(results, f"singing_{key}", SINGING_CONTEXTS)
    out = ["", f"## {label}: 2. Singing is harder than speech at equal context", ""]
    if on_singing and on_speech and _learned(on_speech, 5):
        gaps = [a - b for a, b in zip(on_speech, on_singing)]
        harder, clear = sum(g > 0 for g in gaps), sum(g > MARGIN for g in gaps)
        out.append(f"Speech-trained {label}, speech minus singing at ±5 frames: {_fmt(gaps)} points "
                   f"({harder} of {len(gaps)} contexts favour speech, {clear} by more than the ~{MARGIN:.0f}-point "
                   f"noise): "
                   f"**{'holds' if harder == len(gaps) else 'holds in part' if harder else 'does not hold'}**.")
        if sung:
            gaps = [a - b for a, b in zip(on_speech, sung)]
            out.append(f"Each model on its own domain (speech-trained on speech minus singing-trained on singing): "
                       f"{_fmt(gaps)} points.")
        if speech:
            both = [(n, speech[SPEECH_CONTEXTS.index(n)], on_singing[SINGING_CONTEXTS.index(n)])
                    for n in (5, 15)]
            out.append("The paper's own comparison (singing at ±5 frames vs speech at ±1): "
                       + "; ".join(f"{n} frames: singing {s:.1f} vs speech {p:.1f}" for n, p, s in both) + ".")
    else:
        out.append("Not shown: the speech-trained model is at chance or a stage is missing.")

    out += ["", f"## {label}: 3. Longer context helps more for singing", ""]
    if on_singing and on_speech and _learned(on_speech, 5):
        gain_sing, gain_speech = on_singing[-1] - on_singing[0], on_speech[-1] - on_speech[0]
        ceiling = on_speech[-1] >= 97.0
        verdict = "holds" if gain_sing > gain_speech else "does not hold"
        out.append(f"Gain from 5 to 25 frames (speech-trained {label}, ±5): singing {gain_sing:+.1f} points, "
                   f"speech {gain_speech:+.1f}: **{verdict}**"
                   + (" (speech is at its ceiling, which caps its gain)." if ceiling else "."))
        mid = SINGING_CONTEXTS.index(15)
        out.append(f"Gain from 15 to 25 frames (where speech nears its ceiling): singing "
                   f"{on_singing[-1] - on_singing[mid]:+.1f} points, speech {on_speech[-1] - on_speech[mid]:+.1f}.")
        if sung:
            out.append(f"Singing-trained {label} on singing: {sung[-1] - sung[0]:+.1f} points from 5 to 25 frames.")
    else:
        out.append("Not shown: the speech-trained model is at chance or a stage is missing.")

    out += ["", f"## {label}: 4. Speech-trained vs singing-trained on singing", ""]
    if on_singing and sung:
        diffs = [a - b for a, b in zip(on_singing, sung)]
        out.append(f"Speech-trained minus singing-trained, on singing: {_fmt(diffs)} points "
                   "(paper, VocaLiST: −2.1, −0.3, +0.6, +0.7, +0.7).")
    else:
        out.append("Not shown: a stage is missing.")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "runs/reproduce/vocalist")
    results = load_results(out)
    if not results:
        raise SystemExit(f"no finished stages under {out}: run `avsync reproduce vocalist` first")
    text = "\n".join(findings(results)) + "\n"
    (out / "findings.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
