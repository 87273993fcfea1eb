"""avsync's side of the LSE pipeline comparison (goldens: ``make_goldens_lse_pipeline.py``).

:func:`avsync_lse_tracks` runs what ``avsync score --metrics lse`` runs per file
(:class:`avsync.score.lse.LSEScorer`: decoding at 25 fps / 16 kHz, face tracks, crops, SyncNet's
search per track) with the goldens' detector, weights and tracker limits, and returns the tracks
in the goldens' form. Run as a script it prints, per clip and variant of the goldens, the largest
differences (the figures quoted in docs/faces.md)::

    python tests/parity/lse_pipeline_avsync.py
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "goldens" / "lse_pipeline" / "lse_pipeline.json"
LAYOUT = ROOT / "tests" / "goldens" / "syncnet" / "syncnet_layout.json"
FIXTURES = ROOT.parent / "shared" / "fixtures" / "real"


def synthetic_syncnet():
    """SyncNet with the goldens' weights (the official layout filled by avsync's generator)."""
    from avsync.papers.syncnet import convert as converter
    from avsync.convert.synthetic_weights import read_layout, synthetic_state_dict

    return converter.load_official(synthetic_state_dict(read_layout(LAYOUT))).eval()


def avsync_lse_tracks(clip: Path, limits: dict, net=None) -> list[dict]:
    """The tracks ``avsync score --metrics lse`` finds and scores in ``clip`` ([] for no face): its
    decoding and face pipeline (``LSEScorer.decode``), then per track the search its ``compute``
    runs (``syncnet_lse`` on the track's crops and audio), keeping the mean distance curve."""
    from avsync.faces import DlibHogDetector, TrackParams
    from avsync.evaluation.lse import syncnet_lse
    from avsync.score.lse import LSEScorer
    from avsync.score.reasons import Unsynchronisable

    scorer = LSEScorer(net if net is not None else synthetic_syncnet(), DlibHogDetector(upsample=1),
                       params=TrackParams(min_track=limits["min_track"], min_face_size=limits["min_face_size"]))
    try:
        decoded = scorer.decode(str(clip))
    except Unsynchronisable as err:
        if err.code == "no_face":
            return []
        raise
    out = []
    for first, end, crops, span in decoded:  # LSEScorer.compute's search per track, keeping the distances
        with torch.inference_mode():
            result = syncnet_lse(scorer.net, torch.from_numpy(crops), torch.from_numpy(span), vshift=scorer.vshift)
        bgr = np.ascontiguousarray(crops[..., ::-1])
        out.append({"first_frame": first, "end_frame": end, "offset": result.offset_frames,
                    "lse_c": result.lse_c, "lse_d": result.lse_d,
                    "mean_dists": result.dists.t().contiguous().mean(1).tolist(),
                    "crops": {"count": len(bgr), "sha256": hashlib.sha256(bgr.tobytes()).hexdigest(),
                              "frame_means": bgr.reshape(len(bgr), -1).mean(1).tolist()}})
    return out


def differences(ours: list[dict], theirs: list[dict]) -> dict:
    """Per clip: track spans equal?, max |ΔLSE-C|, max |ΔLSE-D|, offsets equal?, crops equal
    (SHA-256) and the largest difference of a crop frame's mean grey level."""
    if [(t["first_frame"], t["end_frame"]) for t in ours] != [(t["first_frame"], t["end_frame"]) for t in theirs]:
        return {"tracks": [len(ours), len(theirs)], "spans_equal": False}
    if not ours:
        return {"tracks": [0, 0], "spans_equal": True}
    return {"tracks": [len(ours), len(theirs)], "spans_equal": True,
            "offsets_equal": all(a["offset"] == b["offset"] for a, b in zip(ours, theirs)),
            "lse_c": max(abs(a["lse_c"] - b["lse_c"]) for a, b in zip(ours, theirs)),
            "lse_d": max(abs(a["lse_d"] - b["lse_d"]) for a, b in zip(ours, theirs)),
            "crops_equal": all(a["crops"]["sha256"] == b["crops"]["sha256"] for a, b in zip(ours, theirs)),
            "mean_dists": max(float(np.max(np.abs(np.subtract(a["mean_dists"], b["mean_dists"]))))
                              for a, b in zip(ours, theirs) if "mean_dists" in b) if all("mean_dists" in b for b in theirs)
            else None,
            "crop_mean": max(float(np.max(np.abs(np.subtract(a["crops"]["frame_means"], b["crops"]["frame_means"]))))
                             for a, b in zip(ours, theirs))}


def main() -> None:
    golden = json.loads(GOLDEN.read_text())
    net = synthetic_syncnet()
    print("| clip | variant | tracks (avsync / authors) | spans | offsets | max abs LSE-C diff | max abs LSE-D diff "
          "| max abs mean-distance diff | crops equal | max crop mean diff |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, entry in golden["clips"].items():
        ours = avsync_lse_tracks(FIXTURES / entry["clip"], entry["limits"], net)
        for variant in ("published", "lossless", "same_frames"):
            if variant not in entry:
                continue
            d = differences(ours, entry[variant]["tracks"])
            cells = [name, variant, f"{d['tracks'][0]} / {d['tracks'][1]}", "equal" if d["spans_equal"] else "differ"]
            if d["spans_equal"] and ours:
                cells += ["equal" if d["offsets_equal"] else "differ", f"{d['lse_c']:.2e}", f"{d['lse_d']:.2e}",
                          f"{d['mean_dists']:.2e}" if d["mean_dists"] is not None else "-",
                          "yes" if d["crops_equal"] else "no", f"{d['crop_mean']:.3f}"]
            else:
                cells += ["-"] * 6
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
