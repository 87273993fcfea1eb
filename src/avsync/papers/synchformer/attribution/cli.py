"""``avsync attribute --ckpt CKPT VIDEO [--out DIR]``: which 0.1 s of the audio and of the picture the
model's offset rests on (Synchformer §4.1, Fig. 3).

The file is decoded as the model was fed (:func:`avsync.detect.decoding.decode_for_model`), one
crop of the model's length from ``--start``; the offset counted as right is ``--offset`` when the
true one is known, else the model's own answer on the unmasked crop. Masked chunks come from the
``--distractor`` clips (the paper: random other test clips); without any, from the same file rolled
by half its length. Writes ``DIR/<stem>.json`` (per-chunk scores of both streams, raw and min–max
scaled) and ``DIR/<stem>.png`` (frames and waveform with the scores), and with ``--tb-logdir`` adds
the figure to TensorBoard. A file that cannot be read gets one line on stderr naming it (exit 1).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from avsync.papers.synchformer.attribution.masks import MODALITIES, attribute
from avsync.detect.decoding import decode_for_model
from avsync.detect.detectors import GridDetector, detector_for
from avsync.detect.loading import CheckpointError, load_module
from avsync.detect.plots import save
from avsync.inputs import InputSpec
from avsync.media import MediaError

__all__ = ["model_crop", "attribute_video", "main"]


def model_crop(frames: torch.Tensor, wav: torch.Tensor, spec: InputSpec, start_sec: float,
               path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The crop of the model's length starting at ``start_sec`` (whole frames); MediaError if the file is short."""
    v0 = int(round(start_sec * spec.fps))
    a0 = int(round(v0 / spec.fps * spec.sample_rate))
    if v0 < 0 or v0 + spec.num_frames > len(frames) or a0 + spec.num_samples > len(wav):
        raise MediaError(path, f"too short for a {spec.duration_sec:g} s crop from {start_sec:g} s "
                               f"({len(frames) / spec.fps:.2f} s decoded)")
    return frames[v0:v0 + spec.num_frames], wav[a0:a0 + spec.num_samples]


def _rolled(frames: torch.Tensor, wav: torch.Tensor, fps: float, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The file moved by half its length (circularly): content from other moments, aligned as before."""
    shift = len(frames) // 2
    return frames.roll(shift, 0), wav.roll(int(round(shift / fps * sample_rate)), 0)


def attribute_video(module: torch.nn.Module, path: str | Path, distractors: list[str | Path] = (), *,
                    start_sec: float = 0.0, offset_sec: float | None = None, num_masks: int = 256,
                    batch_size: int = 16, seed: int = 0) -> dict:
    """Attribution of both streams of one file: {"record": JSON-able dict, "frames", "wav", "audio", "visual"}.

    ``module`` is a grid classifier (``input_spec``, ``grid``, ``module(batch)`` -> offset logits)."""
    spec, grid = module.input_spec, module.grid
    frames, wav = model_crop(*decode_for_model(path, spec), spec, start_sec, path)
    pool = []
    for other in distractors or [None]:
        decoded = decode_for_model(other, spec) if other else _rolled(*decode_for_model(path, spec), spec.fps,
                                                                       spec.sample_rate)
        pool.append(model_crop(*decoded, spec, 0.0 if other else start_sec, other or path))
    device = next(module.parameters()).device

    def predict(video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return module({"video": video.to(device), "audio": audio.to(device)})

    with torch.no_grad():
        own = int(predict(frames[None], wav[None]).argmax(-1)[0])
    target = own if offset_sec is None else grid.nearest_class(offset_sec)
    results = {m: attribute(predict, frames, wav, pool, modality=m, fps=spec.fps, sample_rate=spec.sample_rate,
                            target_class=target, num_masks=num_masks, batch_size=batch_size, seed=seed)
               for m in MODALITIES}
    record = {"file": str(path), "start_sec": float(start_sec), "duration_sec": spec.duration_sec,
              "predicted_offset_sec": grid.seconds_of(own), "target_offset_sec": grid.seconds_of(target),
              "target": "given" if offset_sec is not None else "the model's prediction on the unmasked crop",
              "distractors": [str(d) for d in distractors] or ["the same file rolled by half its length"],
              **{m: r.as_dict() for m, r in results.items()}}
    return {"record": record, "frames": frames, "wav": wav, **results}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avsync attribute", description=__doc__.split("\n\n")[0])
    parser.add_argument("video", metavar="VIDEO")
    parser.add_argument("--ckpt", required=True, help="a checkpoint of a grid classifier (Synchformer, SparseSync)")
    parser.add_argument("--out", default="attribution", help="folder for <stem>.json and <stem>.png")
    parser.add_argument("--distractor", nargs="*", default=[], help="other clips whose chunks replace masked ones")
    parser.add_argument("--start", type=float, default=0.0, help="crop start in the file (s)")
    parser.add_argument("--offset", type=float, default=None, help="the true offset (s, + = audio leads), if known")
    parser.add_argument("--masks", type=int, default=256, help="random masks per modality")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tb-logdir", help="also add the figure to TensorBoard in this folder")
    parser.add_argument("--device", default="cpu")
    return parser


def main(argv: list[str] | None = None) -> int:
    from avsync.papers.synchformer.attribution.plots import attribution_figure

    args = _parser().parse_args(argv)
    try:
        module = load_module(args.ckpt, args.device)
        if not isinstance(detector_for(module), GridDetector):
            raise TypeError(f"{type(module).__name__} scores frame shifts; attribution needs a grid classifier")
    except (CheckpointError, TypeError) as err:
        print(f"avsync attribute: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    try:
        out = attribute_video(module, args.video, args.distractor, start_sec=args.start, offset_sec=args.offset,
                              num_masks=args.masks, batch_size=args.batch_size, seed=args.seed)
    except (MediaError, OSError) as err:
        reason = err.reason if isinstance(err, MediaError) else str(err)
        where = err.path if isinstance(err, MediaError) else args.video
        print(f"avsync attribute: {where}: {' '.join(reason.split())}", file=sys.stderr)
        return 1
    stem, folder = Path(args.video).stem, Path(args.out)
    record, spec = out["record"], module.input_spec
    title = (f"{Path(args.video).name}: offset {record['target_offset_sec']:+.1f} s "
             f"(predicted {record['predicted_offset_sec']:+.1f} s)")
    figure = attribution_figure(out["frames"].numpy(), out["wav"].numpy(), spec.fps, spec.sample_rate,
                                out["audio"], out["visual"], title)
    if args.tb_logdir:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(args.tb_logdir) as writer:
            writer.add_figure(f"attribution/{stem}", figure, close=False)
        record["tensorboard"] = str(args.tb_logdir)
    record["plot"] = str(save(figure, folder / f"{stem}.png"))
    (folder / f"{stem}.json").write_text(json.dumps(record, indent=1))
    for m in MODALITIES:
        peak = out[m].times_sec[int(out[m].scores.argmax())] if out[m].kept else float("nan")
        print(f"{args.video}: {m} evidence peaks at {peak:.1f} s ({out[m].kept}/{out[m].num_masks} masks kept)")
    print(f"wrote {folder / (stem + '.json')} and {record['plot']}")
    return 0
