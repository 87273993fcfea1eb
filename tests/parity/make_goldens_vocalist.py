#!/usr/bin/env python
"""Make VocaLiST's golden parity files by running the authors' code (vskadandale/vocalist).

Not run by the tests; they read what it writes to ``tests/goldens/vocalist/``. Needs a Python with
the authors' requirements (torch, torchaudio, numpy, opencv, soundfile, natsort, tqdm) and
``ffmpeg`` on PATH::

    python tests/parity/make_goldens_vocalist.py --authors-repo /path/to/vocalist

The authors test on LRS2 prepared by Wav2Lip's ``preprocess.py``: frames read with OpenCV's
``VideoCapture``, the face crop of each written with ``cv2.imwrite`` as ``<i>.jpg``, and the
audio extracted with ``ffmpeg -y -i <video> -strict -2 audio.wav``. The fixture clip is already a
face crop (LRS3's), so the folder is made the same way without the face detector, from the first
``FRAMES`` frames (the search over 31 offsets costs 31 forward passes per window, and the
authors' test has no way to score fewer) and the whole audio track, downmixed to mono with
``-ac 1`` (LRS2's audio is mono, the fixture's stereo, which their ``sf.read`` + ``torch.stft``
cannot take). Then, all with the authors'
code:

1. the key layout of their ``SyncTransformer`` -> ``vocalist_layout.json``;
2. :func:`avsync.convert.synthetic_weights.synthetic_state_dict` of it, saved as
   ``{'state_dict': ...}`` and loaded with ``test_lrs2.loadcheckpoint``;
3. ``test_lrs2.Dataset.__getitem__`` on the folder (cv2.imread, cv2.resize to 96x96, the lower
   half, /255; soundfile + torch.stft + torchaudio MelScale, their normalisation);
4. ``test_lrs2.eval_model`` on that item, with their ``calc_pdist`` wrapped to record the window
   inputs it is given and the raw sync logits it returns (−1000 where a shift leaves the clip).
   Their ``calc_pdist`` runs the visual encoder on 31 copies of each window; a wrapper runs it
   on one copy and repeats the result (:class:`OnceForRepeatedInput`; identical values in eval
   mode), which makes the script minutes instead of an hour on a CPU.

Steps 2-4 run twice: with the frames stored as the authors store them (JPEG, OpenCV's default
quality 95) and stored losslessly (PNG bytes under the same names; ``cv2.imread`` reads by
content), which isolates that JPEG round trip from the rest of the pipeline.

Written: ``vocalist_layout.json``; ``vocalist_goldens.npz`` with the int16 samples of the wav
that the mel columns below depend on (``wav``, a prefix of the clip's) and, per variant, the mouth frames
the network saw (uint8 BGR (F, 48, 96, 3); the inputs are exactly these /255), the normalised
mel columns the windows use (80, M) float32, and the logits (windows, 31) float32.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_by_path import load_synthetic_weights  # noqa: E402
FIXTURE = (ROOT.parent / "shared/fixtures/real/lrs3/h264_orig_strict_crop_25fps_224side_16000hz_aac/pretrain"
           "/C8zY0oAdQrs/00018.mp4")
OUT = ROOT / "tests/goldens/vocalist"
FRAMES = 40


def prepare_folder(clip: Path, folder: Path, lossless: bool) -> None:
    """Wav2Lip's preprocessing of one video (without the face detector: the clip is a face crop)."""
    import cv2

    folder.mkdir(parents=True)
    cap = cv2.VideoCapture(str(clip))
    for i in range(FRAMES):
        ok, frame = cap.read()
        if not ok:
            raise SystemExit(f"{clip} has fewer than {FRAMES} frames")
        if lossless:
            (folder / f"{i}.jpg").write_bytes(cv2.imencode(".png", frame)[1].tobytes())
        else:
            cv2.imwrite(str(folder / f"{i}.jpg"), frame)
    cap.release()
    wav = shlex.quote(str(folder / "audio.wav"))
    command = f"ffmpeg -loglevel panic -y -i {shlex.quote(str(clip))} -strict -2 -ac 1 {wav}"
    subprocess.run(command, shell=True, check=True)


class OnceForRepeatedInput(torch.nn.Module):
    """Their ``calc_pdist`` feeds one visual window 31 times (``repeat``); encode it once and
    repeat the result. Same values in eval mode (batch norm uses its running statistics), 31x
    less time on a CPU."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and len(x) > 1 and bool((x == x[:1]).all()):
            return self.inner(x[:1]).expand(len(x), *([-1] * (x.ndim - 1)))
        return self.inner(x)


def run_authors(authors, weights: Path, folder: Path) -> dict:
    dataset = object.__new__(authors.Dataset)
    dataset.split, dataset.all_videos = "test", [str(folder)]
    vid, mels, lastframe = dataset[0]
    model = authors.loadcheckpoint(authors.SyncTransformer(), str(weights))
    model.vid_prenet = OnceForRepeatedInput(model.vid_prenet)
    record = {}
    calc_pdist = authors.calc_pdist

    def recording_calc_pdist(model, feat1, feat2, vshift=15):
        dists = calc_pdist(model, feat1, feat2, vshift=vshift)
        record.update(windows=feat1.clone(), mel_windows=feat2.clone(), dists=torch.stack(dists))
        return dists

    authors.calc_pdist = recording_calc_pdist
    try:
        loader = [(vid[None], mels[None], torch.tensor([lastframe]))]
        authors.eval_model(loader, authors.device, model)
    finally:
        authors.calc_pdist = calc_pdist
    frames = vid.view(-1, 3, 48, 96).permute(0, 2, 3, 1).numpy() * 255.0
    if np.abs(frames - frames.round()).max() > 1e-3:
        raise SystemExit("the mouth frames are not uint8 / 255")
    used = int(80.0 * ((lastframe - 1) / 25.0)) + authors.mel_step_size
    # the samples those mel columns see (centred 800-sample frames every 200), and a margin
    wav = np.round(dataset.get_wav(str(folder / "audio.wav")) * 32768).astype(np.int16)[: 200 * used + 1600]
    return {"wav": wav, "frames": frames.round().astype(np.uint8), "mel": mels[0, :, :used].numpy().astype(np.float32),
            "logits": record["dists"].numpy().astype(np.float32), "windows": record["windows"],
            "mel_windows": record["mel_windows"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors-repo", required=True, type=Path, help="checkout of vskadandale/vocalist")
    parser.add_argument("--clip", type=Path, default=FIXTURE)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    clip, out_dir = args.clip.resolve(), args.out.resolve()
    sys.path.insert(0, str(args.authors_repo.resolve()))
    sys.argv = [sys.argv[0]]  # test_lrs2 parses the command line when imported
    authors = importlib.import_module("test_lrs2")
    authors.device = torch.device("cuda" if authors.use_cuda else "cpu")
    synthetic = load_synthetic_weights()

    authors_state = authors.SyncTransformer().state_dict()
    out_dir.mkdir(parents=True, exist_ok=True)
    synthetic.write_layout(authors_state, out_dir / "vocalist_layout.json",
                           note="vocalist models.model.SyncTransformer().state_dict()")
    state = synthetic.synthetic_state_dict(synthetic.read_layout(out_dir / "vocalist_layout.json"))
    if any(state[k].dtype != v.dtype for k, v in authors_state.items()):
        raise SystemExit("a synthetic tensor has another dtype than the authors' one")

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "synthetic.pth"
        torch.save({"state_dict": state}, weights)
        for name in ("jpeg", "png"):
            folder = Path(tmp) / name / "clip"
            prepare_folder(clip, folder, lossless=name == "png")
            run = run_authors(authors, weights, folder)
            # the windows calc_pdist was given are the frames and mel columns saved here
            n = len(run["logits"])
            windows = torch.from_numpy(run["frames"]).permute(0, 3, 1, 2).double() / 255.0
            expect = torch.stack([windows[v:v + 5].reshape(15, 48, 96) for v in range(n)]).float()
            if not torch.equal(expect, run["windows"]):
                raise SystemExit("the recorded visual windows are not the saved frames")
            out[f"frames_{name}"], out[f"mel_{name}"], out[f"logits_{name}"] = run["frames"], run["mel"], run["logits"]
            out["wav"] = run["wav"]
            print(f"{name}: windows {n}, logits {run['logits'].shape}, "
                  f"offsets {(15 - run['logits'].argmax(1)).tolist()}")
    np.savez_compressed(out_dir / "vocalist_goldens.npz", **out)
    print(f"wrote {out_dir} ({sum(p.stat().st_size for p in out_dir.iterdir())} bytes)")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
