"""SparseSync against the authors' code: the same weights and the same mp4 give the same logits.

The goldens (``tests/goldens/sparsesync_*``) were made by the AUTHORS' model and preprocessing
(``tests/parity/make_goldens_sparsesync.py``, run with their repository) from a synthetic state
dict in their layout; see ``reproductions/sparsesync/README.md`` ("Parity with the authors' code").
Here the same state dict is regenerated from the committed key -> shape list, converted with
``avsync.papers.sparsesync.convert``, loaded strictly, and fed with avsync's own decoding (the VGGSound
data module at the clip's official fixed test offset) and model-side transforms.
"""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from avsync.papers.sparsesync.convert import load_official
from avsync.convert.synthetic_weights import read_layout, synthetic_state_dict
from avsync.data_modules.vggsound import VGGSoundDataModule
from avsync.inputs import FrameNormalize, LogSpectrogram

from parity.compare import DEVICE, golden_test_batch, load_golden, rel  # noqa: E402
from support.input_specs import PAPER_SPEC

pytestmark = pytest.mark.parity
GOLDENS = Path(__file__).resolve().parents[1] / "goldens"
SPEC = PAPER_SPEC
REL_TOL = 1e-4  # outputs; float32 arithmetic in another order (fused attention, conv algorithms)


@pytest.fixture(scope="module")
def golden() -> dict:
    return load_golden(GOLDENS, "sparsesync_golden")


@pytest.fixture(scope="module")
def model():
    state = synthetic_state_dict(read_layout(GOLDENS / "sparsesync_layout.json"))
    return load_official(state, arch="sparsesync").eval().to(DEVICE)  # converter + strict load


@pytest.fixture(scope="module")
def batch(real_fixtures, golden, tmp_path_factory):
    """The clip as avsync's VGGSound data module delivers it at its official fixed test offset."""
    tmp = tmp_path_factory.mktemp("vggsound")
    ytid, start = golden["key"].split("_")[0], int(golden["key"].split("_")[1]) // 1000
    with open(tmp / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerow((ytid, start, "dog barking", "test"))
    dm = VGGSoundDataModule(root=str(real_fixtures / "vggsound"), meta_csv=str(tmp / "vggsound.csv"),
                            fixed_offsets_csv={"test": str(real_fixtures / "metadata" / Path(
                                "vggsound_test_fixed_offsets_size21_crop5.csv"))},
                            input_spec=SPEC, batch_size=1, num_workers=0, probe_cache_dir=str(tmp / "cache"))
    return golden_test_batch(dm, golden)


@pytest.fixture(scope="module")
def run(model, batch):
    """avsync's model inputs and forward pass, with the extractor outputs and selector outputs kept."""
    video = FrameNormalize()(batch["video"]).to(DEVICE)
    spec = LogSpectrogram(n_fft=512, hop_length=128)(batch["audio"]).to(DEVICE)
    seen = {}
    names = ("vfeat_extractor", "afeat_extractor")
    hooks = [getattr(model, n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o)) for n in names]
    hooks += [getattr(model.transformer, n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o))
              for n in ("v_selector", "a_selector")]
    with torch.no_grad():
        logits = model(video, spec)
    for h in hooks:
        h.remove()
    return {"video": video.cpu(), "spec": spec.cpu(), "logits": logits.cpu(),
            **{k: v.cpu() for k, v in seen.items()}}


def test_decoded_frames_are_bitwise_the_authors(batch, golden):
    """uint8 frames after the spatial and temporal crop (the authors': read_video, centre crop 224)."""
    ours = batch["video"][0].permute(0, 3, 1, 2).contiguous().numpy()  # (T, 3, H, W) as the authors'
    assert list(ours.shape) == golden["frames_shape"].tolist()
    np.testing.assert_array_equal(ours[golden["frames_kept_index"]], golden["frames_kept"])
    np.testing.assert_allclose(ours.reshape(len(ours), -1).mean(1), golden["frames_mean"], rtol=1e-6)
    assert hashlib.sha256(ours.tobytes()).hexdigest() == str(golden["frames_sha256"])


def test_audio_window_and_model_inputs_equal_the_authors(batch, run, golden):
    # the same 80,000 samples (both decode the AAC stream with FFmpeg's decoder, no resampling at 16 kHz)
    np.testing.assert_array_equal(batch["audio"][0].numpy(), golden["audio"])
    # normalised log-spectrogram (torchaudio's Spectrogram there, torch.stft here): the goldens store
    # it in float16, so equal within float16 rounding (2^-11 relative)
    theirs = golden["spectrogram_fp16"].astype(np.float32)
    ours = run["spec"][0, 0].numpy()
    assert ours.shape == theirs.shape == (257, 626)
    assert np.all(np.abs(ours - theirs) <= 2.0 ** -11 * np.abs(theirs) + 1e-7)
    assert run["spec"].double().mean().item() == pytest.approx(float(golden["spectrogram_mean"]), abs=1e-6)
    assert run["spec"].double().std().item() == pytest.approx(float(golden["spectrogram_std"]), rel=1e-6)
    assert run["video"].double().mean().item() == pytest.approx(float(golden["video_input_mean"]), rel=1e-6)
    assert run["video"].double().std().item() == pytest.approx(float(golden["video_input_std"]), rel=1e-6)


def test_logits_equal_the_authors(run, golden):
    assert rel(run["v_selector"][0], golden["v_selector"]) < REL_TOL
    assert rel(run["a_selector"][0], golden["a_selector"]) < REL_TOL
    assert rel(run["logits"][0], golden["logits"]) < REL_TOL
    assert run["logits"][0].argmax().item() == int(golden["logits"].argmax())


def test_without_the_bridge_gelu_the_comparison_fails(model, run, golden):
    """Sabotage: the bridge as it was before (conv only) is a different function, and the test sees it."""
    bridge = model.v_bridge.bridge
    gelu = bridge[1]
    assert isinstance(gelu, torch.nn.GELU)
    bridge[1] = torch.nn.Identity()
    try:
        with torch.no_grad():
            logits = model.forward_extracted(run["vfeat_extractor"].to(DEVICE), run["afeat_extractor"].to(DEVICE)).cpu()
    finally:
        bridge[1] = gelu
    assert rel(logits[0], golden["logits"]) > 100 * REL_TOL
    with torch.no_grad():  # and with it restored, the same path agrees again
        logits = model.forward_extracted(run["vfeat_extractor"].to(DEVICE), run["afeat_extractor"].to(DEVICE)).cpu()
    assert rel(logits[0], golden["logits"]) < REL_TOL
