"""DeSync equal to av-benchmark's: the golden made with its code (tests/goldens/make_desync_golden.py)
on real fixture clips with the same synthetic official-layout Synchformer weights; and, cheaply, the
window arithmetic (first and last 4.8 s of the first 8 s) with a toy Synchformer."""
import importlib.util
import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from avsync.registry import get_converter
from avsync.detect.loading import module_from_checkpoint
from avsync.papers.synchformer.stage2 import SynchformerStage2Module
from avsync.media import MediaError, read_frames
from avsync.evaluation.desync import decode_for_desync, desync_of

from conftest import SHARED

GOLDEN = Path(__file__).parents[1] / "goldens" / "desync_avbench_seed0.json"
VGG = "vggsound/h264_video_25fps_256side_16000hz_aac/3qesirWAGt4_20000_30000.mp4"


def _golden_script():
    spec = importlib.util.spec_from_file_location("make_desync_golden", GOLDEN.parent / "make_desync_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_frames_are_every_frame_of_a_25fps_file(real_fixtures):
    """DeSync's decoding keeps every frame of a 25 fps file, as av-benchmark's reader (and the golden's
    stand-in for it, PyAV) does."""
    path = real_fixtures / VGG
    with av.open(str(path)) as container:
        pyav = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)][:200])
    assert np.array_equal(read_frames(path, 0.0, 8.0, 25.0, None), pyav)
    frames, wav = decode_for_desync(path)
    assert frames.shape == (200, 224, 224, 3) and frames.dtype == torch.uint8 and wav.shape == (128000,)


def test_too_short_for_desync(real_fixtures):
    with pytest.raises(MediaError, match="too short"):
        decode_for_desync(real_fixtures / VGG, duration_sec=12.0)


def test_windows_are_the_first_and_last_4_8_seconds(real_fixtures):
    torch.manual_seed(0)
    module = SynchformerStage2Module(arch="synchformer_toy").eval()
    frames, wav = decode_for_desync(real_fixtures / VGG, frame_size=32)
    result = desync_of(module, frames, wav)
    with torch.inference_mode():
        first = module({"video": frames[None, :120], "audio": wav[None, :76800]})[0]
        last = module({"video": frames[None, 80:200], "audio": wav[None, 51200:128000]})[0]
    for logits, expected in ((result.first_logits, first), (result.last_logits, last)):
        torch.testing.assert_close(torch.tensor(logits, dtype=torch.float64), expected.double(), rtol=1e-5, atol=1e-5)
    grid = np.asarray(module.grid.values)
    assert result.first_offset_sec == grid[int(first.argmax())]
    assert result.last_offset_sec == grid[int(last.argmax())]
    assert result.desync_sec == pytest.approx((abs(result.first_offset_sec) + abs(result.last_offset_sec)) / 2)


@pytest.mark.slow
def test_desync_equals_av_benchmark(real_fixtures):
    """Full-size Synchformer (CPU: minutes): per window logits to 1e-4, the same class, the same DeSync."""
    golden = json.loads(GOLDEN.read_text())
    script = _golden_script()
    weights = script.synthetic_state_dict(
        script.official_key_shapes(SHARED / "spec" / "official_state_dicts" / "synchformer.json"), seed=0)
    module = module_from_checkpoint(get_converter("synchformer").lightning_checkpoint(weights), "cpu", "synthetic")
    del weights
    assert [float(v) for v in module.grid.values] == pytest.approx(golden["class_grid_sec"])
    for clip in golden["clips"]:
        frames, wav = decode_for_desync(real_fixtures / clip["clip"], clip["duration_sec"])
        assert float(wav.double().sum()) == pytest.approx(clip["audio_input_sum"], rel=1e-6)
        # the same pixels after av-benchmark's resize, crop and (x / 255 - 0.5) / 0.5
        assert float((frames.double() / 255 - 0.5).div(0.5).sum()) == pytest.approx(clip["video_input_sum"], rel=1e-6)
        result = desync_of(module, frames, wav)
        for window, logits, offset in ((clip["windows"][0], result.first_logits, result.first_offset_sec),
                                       (clip["windows"][1], result.last_logits, result.last_offset_sec)):
            ours, theirs = (torch.tensor(x, dtype=torch.float64) for x in (logits, window["logits"]))
            torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
            assert abs(offset) == pytest.approx(window["abs_offset_sec"]), clip["clip"]
        assert result.desync_sec == pytest.approx(clip["desync_sec"]), clip["clip"]
