"""Official weights by name: the checked, atomic, resumable download (against a local HTTP server on
127.0.0.1, never the internet), ``avsync weights list|fetch``, and ``avsync detect --weights PATH`` /
``--model NAME`` on the real LRS3 clip with a random-init state dict in the authors' layout."""
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from avsync.cli import main
from avsync.convert.synthetic_weights import read_layout, synthetic_state_dict
from avsync.weights import catalog
from avsync.weights.catalog import Checksum, OfficialWeights
from avsync.weights.download import DownloadError, download

from conftest import SHARED

LRS3_CLIP = "lrs3/h264_orig_strict_crop_25fps_224side_16000hz_aac/pretrain/C8zY0oAdQrs/00018.mp4"
PAYLOAD = np.random.default_rng(0).integers(0, 256, 3 * 2**20 + 123, dtype=np.uint8).tobytes()


class _Server:
    """Serves ``files[path]`` with Range support; ``truncate_at`` cuts the body (Content-Length still
    announces the whole file) to imitate a dropped connection; ``requests`` records the Range headers."""

    def __init__(self):
        self.files, self.truncate_at, self.requests, self.ignore_range, self.no_length = {}, None, [], False, False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                if self.headers.get("Range") and not server.ignore_range:
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416, "Range Not Satisfiable")
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                if not server.no_length:
                    self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if server.truncate_at is not None:
                    body = body[: max(0, server.truncate_at - start)]
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"


@pytest.fixture
def server():
    srv = _Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _files(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def test_download_checks_the_published_digest_and_moves_the_file_into_place(server, tmp_path):
    server.files["/a.pt"] = PAYLOAD
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    got = download(server.url("/a.pt"), tmp_path / "a.pt", Checksum("sha256", sha), progress=False)
    assert got.path.read_bytes() == PAYLOAD and got.digest == sha and got.resumed_from == 0
    assert _files(tmp_path) == ["a.pt"], "no .part is left after a good download"
    md5_prefix = Checksum("md5", hashlib.md5(PAYLOAD).hexdigest()[:7], prefix=True)  # how Iashin et al. publish
    assert download(server.url("/a.pt"), tmp_path / "b.pt", md5_prefix, progress=True).path.read_bytes() == PAYLOAD


def test_two_processes_fetching_one_file_wait_for_each_other(server, tmp_path):
    """The lock file serialises them (flock also separates two opens in one process): one download,
    then the second caller finds the finished file."""
    server.files["/a.pt"] = PAYLOAD
    sha = Checksum("sha256", hashlib.sha256(PAYLOAD).hexdigest())
    results = []

    def fetch():
        results.append(download(server.url("/a.pt"), tmp_path / "a.pt", sha, progress=False))

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and all(r.path.read_bytes() == PAYLOAD for r in results)
    assert len(server.requests) == 1 and _files(tmp_path) == ["a.pt"]


def test_wrong_checksum_is_one_error_and_leaves_no_file(server, tmp_path):
    server.files["/a.pt"] = PAYLOAD
    with pytest.raises(DownloadError, match="checksum mismatch") as err:
        download(server.url("/a.pt"), tmp_path / "a.pt", Checksum("md5", "0000000", prefix=True), progress=False)
    assert "\n" not in str(err.value)
    assert _files(tmp_path) == [], "a file with the wrong digest is deleted, .part included"


def test_404_is_one_error_and_leaves_no_file(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        download(server.url("/missing.pt"), tmp_path / "m.pt", None, progress=False)
    assert "\n" not in str(err.value) and "/missing.pt" in str(err.value)
    assert _files(tmp_path) == []


def test_truncated_download_keeps_only_the_part_file_and_resumes_with_range(server, tmp_path):
    server.files["/a.pt"] = PAYLOAD
    server.truncate_at = 2**20 + 7
    sha = Checksum("sha256", hashlib.sha256(PAYLOAD).hexdigest())
    with pytest.raises(DownloadError, match="truncated download") as err:
        download(server.url("/a.pt"), tmp_path / "a.pt", sha, progress=False)
    assert "\n" not in str(err.value)
    assert _files(tmp_path) == ["a.pt.part"], "the final path never holds the truncated file"
    assert (tmp_path / "a.pt.part").read_bytes() == PAYLOAD[: 2**20 + 7]

    server.truncate_at = None
    got = download(server.url("/a.pt"), tmp_path / "a.pt", sha, progress=False)
    assert server.requests[-1] == ("/a.pt", f"bytes={2**20 + 7}-"), "the second request asks for the rest only"
    assert got.resumed_from == 2**20 + 7 and got.path.read_bytes() == PAYLOAD
    assert _files(tmp_path) == ["a.pt"]


def test_no_length_and_no_checksum_means_nothing_to_check_so_no_file(server, tmp_path):
    server.files["/a.pt"], server.no_length = PAYLOAD, True
    with pytest.raises(DownloadError, match="cannot be checked"):
        download(server.url("/a.pt"), tmp_path / "a.pt", None, progress=False)
    assert _files(tmp_path) == []
    sha = Checksum("sha256", hashlib.sha256(PAYLOAD).hexdigest())  # with a checksum the length is not needed
    assert download(server.url("/a.pt"), tmp_path / "a.pt", sha, progress=False).path.read_bytes() == PAYLOAD


def test_a_server_that_ignores_range_makes_the_download_start_over(server, tmp_path):
    server.files["/a.pt"], server.ignore_range = PAYLOAD, True
    (tmp_path / "a.pt.part").write_bytes(PAYLOAD[:5000])
    sha = Checksum("sha256", hashlib.sha256(PAYLOAD).hexdigest())
    got = download(server.url("/a.pt"), tmp_path / "a.pt", sha, progress=False)
    assert got.resumed_from == 0 and got.path.read_bytes() == PAYLOAD and _files(tmp_path) == ["a.pt"]


def test_a_part_file_that_is_not_a_prefix_is_caught_by_the_checksum(server, tmp_path):
    """A stale .part (another file's bytes) resumes into a wrong file; the checksum rejects it."""
    server.files["/a.pt"] = PAYLOAD
    (tmp_path / "a.pt.part").write_bytes(b"x" * 1000)
    sha = Checksum("sha256", hashlib.sha256(PAYLOAD).hexdigest())
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(server.url("/a.pt"), tmp_path / "a.pt", sha, progress=False)
    assert _files(tmp_path) == []
    assert download(server.url("/a.pt"), tmp_path / "a.pt", sha, progress=False).path.read_bytes() == PAYLOAD


def test_catalog_entries_are_complete_and_honest():
    for entry in catalog.OFFICIAL_WEIGHTS.values():
        assert entry.url or entry.page, entry.name
        assert entry.checksum is None or (entry.checksum.algorithm in ("md5", "sha256")
                                          and all(c in "0123456789abcdef" for c in entry.checksum.hexdigest))
        if entry.model is not None:
            from avsync.registry import converter_names, get_model

            assert entry.model in converter_names() and get_model(entry.model).arch, entry.name
            assert entry.name in get_model(entry.model).weights, entry.name
    no_checksum = {n for n, e in catalog.OFFICIAL_WEIGHTS.items() if e.checksum is None}
    assert no_checksum == {"vocalist-lrs2", "syncnet-v2", "s3fd"}


def test_weights_list_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("AVSYNC_CACHE_DIR", str(tmp_path))
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for name in catalog.OFFICIAL_WEIGHTS:
        assert name in out
    assert "no published checksum" in out and "md5 4415276... (prefix published)" in out
    assert str(tmp_path / "weights") in out


def test_readme_table_is_generated_from_the_catalog():
    from conftest import REPO_ROOT

    from avsync.weights.cli import markdown_table

    assert markdown_table() in (REPO_ROOT / "README.md").read_text(), "rerun `avsync weights list --markdown`"


# -- detect on the real clip with a random official-layout SyncNet --------------------------------
def _official_layout_state_dict(model: str) -> dict[str, torch.Tensor]:
    """A random state dict in the authors' layout (key shapes from shared/spec), from the parity
    tests' generator (:mod:`avsync.convert.synthetic_weights`: seeded per key, constants random)."""
    return synthetic_state_dict(read_layout(SHARED / "spec" / "official_state_dicts" / f"{model}.json"))


@pytest.fixture(scope="module")
def syncnet_official(tmp_path_factory):
    path = tmp_path_factory.mktemp("official") / "syncnet_v2.model"
    torch.save(_official_layout_state_dict("syncnet"), path)
    return path


@pytest.fixture(scope="module")
def short_real_clip(real_fixtures, tmp_path_factory):
    """The first 2.4 s of the real LRS3 clip (the whole 15.7 s clip costs minutes on one core; the
    whole clip is the slow test below)."""
    from avsync.media import read_audio, read_frames, write_mp4

    src = real_fixtures / LRS3_CLIP
    frames, audio = read_frames(src, 0.0, 2.4, 25.0), read_audio(src, 0.0, 2.4, 16000)
    return write_mp4(tmp_path_factory.mktemp("clip") / "lrs3_2s4.mp4", frames, 25.0, audio, 16000)


def _detections(json_path):
    return [(d["offset_sec"], d["confidence"]) for d in json.loads(json_path.read_text())]


def test_detect_with_authors_weights_file_matches_convert_then_ckpt(syncnet_official, short_real_clip, tmp_path):
    """``--weights PATH`` (converted on the fly, family read from the keys) and ``avsync convert`` +
    ``--ckpt`` give the same detection."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    # the clip is a face crop already (and 2.4 s, shorter than a face track must be): no face tracking
    assert main(["detect", "--weights", str(syncnet_official), str(short_real_clip), "--json", str(a),
                 "--faces", "off"]) == 0
    ckpt = tmp_path / "syncnet.ckpt"
    assert main(["convert", "--model", "syncnet", "--src", str(syncnet_official), "--dst", str(ckpt)]) == 0
    assert main(["detect", "--ckpt", str(ckpt), str(short_real_clip), "--json", str(b), "--faces", "off"]) == 0
    assert _detections(a) == _detections(b)


def test_weights_with_a_name_checks_the_published_checksum(syncnet_official, monkeypatch):
    from avsync.papers.syncnet.module import SyncNetModule
    from avsync.weights import WeightsError, load_authors_file

    assert isinstance(load_authors_file(syncnet_official, "syncnet-v2"), SyncNetModule)
    entry = catalog.OFFICIAL_WEIGHTS["syncnet-v2"]
    monkeypatch.setitem(catalog.OFFICIAL_WEIGHTS, "syncnet-v2", OfficialWeights(
        **{**entry.__dict__, "checksum": Checksum("md5", "fffffff", prefix=True)}))
    with pytest.raises(WeightsError, match="is not the published md5 fffffff"):
        load_authors_file(syncnet_official, "syncnet-v2")


def test_authors_pickle_with_foreign_globals_loads_weights_only(tmp_path, monkeypatch):
    """The authors' training scripts pickle their config (OmegaConf) beside the weights; ``--weights``
    reads such a file with ``weights_only=True`` (the foreign class becomes an inert stand-in)."""
    import sys
    import types

    from avsync.papers.syncnet.module import SyncNetModule
    from avsync.weights import load_authors_file

    fake = types.ModuleType("authors_only_cfg")

    class DictConfig:
        def __init__(self, content):
            self.content = content

    DictConfig.__module__, DictConfig.__qualname__ = fake.__name__, "DictConfig"
    fake.DictConfig = DictConfig
    state = _official_layout_state_dict("syncnet")
    path = tmp_path / "wrapped.pt"
    with monkeypatch.context() as m:
        m.setitem(sys.modules, fake.__name__, fake)
        torch.save({"model": state, "args": DictConfig({"lr": 1e-4}), "epoch": 3}, path)
    module = load_authors_file(path)
    assert isinstance(module, SyncNetModule)
    assert torch.equal(module.net.netcnnlip[0].weight, state["netcnnlip.0.weight"])


def test_detect_weights_errors_are_one_line(tmp_path, short_real_clip, capsys):
    junk = tmp_path / "junk.pt"
    torch.save({"foo.weight": torch.zeros(2)}, junk)
    assert main(["detect", "--weights", str(junk), str(short_real_clip)]) == 2
    assert main(["detect", "--weights", str(tmp_path / "absent.pt"), str(short_real_clip)]) == 2
    assert main(["detect", "--model", "no-such-model", str(short_real_clip)]) == 2
    assert main(["detect", str(short_real_clip)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and "cannot tell which model" in err[0] and "no such file" in err[1]
    assert "no official weights called 'no-such-model'" in err[2] and "--ckpt" in err[3]


def _served_syncnet(server, monkeypatch, path, checksum):
    server.files["/syncnet_v2.model"] = path.read_bytes()
    entry = catalog.OFFICIAL_WEIGHTS["syncnet-v2"]
    monkeypatch.setitem(catalog.OFFICIAL_WEIGHTS, "syncnet-v2", OfficialWeights(
        **{**entry.__dict__, "url": server.url("/syncnet_v2.model"), "checksum": checksum}))


def test_detect_model_fetches_converts_and_caches(server, monkeypatch, tmp_path, syncnet_official, short_real_clip,
                                                  capsys):
    monkeypatch.setenv("AVSYNC_CACHE_DIR", str(tmp_path))
    _served_syncnet(server, monkeypatch, syncnet_official, None)
    out = tmp_path / "d.json"
    assert main(["detect", "--model", "syncnet-v2", str(short_real_clip), "--json", str(out), "--faces", "off"]) == 0
    cache = tmp_path / "weights"
    assert _files(cache) == ["syncnet-v2.avsync.pt", "syncnet_v2.model"]
    converted = torch.load(cache / "syncnet-v2.avsync.pt", weights_only=True)
    assert converted["official_weights"]["name"] == "syncnet-v2"
    requests, mtime = len(server.requests), (cache / "syncnet-v2.avsync.pt").stat().st_mtime
    from avsync.papers.syncnet.module import SyncNetModule
    from avsync.weights import load_official

    module = load_official("syncnet-v2")
    assert isinstance(module, SyncNetModule) and not module.training
    assert len(server.requests) == requests and (cache / "syncnet-v2.avsync.pt").stat().st_mtime == mtime, \
        "the second use reads the cache"
    official = torch.load(syncnet_official, weights_only=True)
    assert torch.equal(module.net.netfcaud[3].weight, official["netfcaud.3.weight"])

    assert main(["weights", "list"]) == 0
    assert "yes +converted" in capsys.readouterr().out


def test_fetch_cli_reports_a_wrong_checksum_in_one_line(server, monkeypatch, tmp_path, syncnet_official, capsys):
    monkeypatch.setenv("AVSYNC_CACHE_DIR", str(tmp_path))
    _served_syncnet(server, monkeypatch, syncnet_official, Checksum("md5", "fffffff", prefix=True))
    assert main(["weights", "fetch", "syncnet-v2", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checksum mismatch" in err[0]
    assert _files(tmp_path / "weights") == []
    good = hashlib.md5(syncnet_official.read_bytes()).hexdigest()[:7]
    _served_syncnet(server, monkeypatch, syncnet_official, Checksum("md5", good, prefix=True))
    assert main(["weights", "fetch", "syncnet-v2", "--convert", "--no-progress"]) == 0
    assert _files(tmp_path / "weights") == ["syncnet-v2.avsync.pt", "syncnet_v2.model"]
    assert f"matches the published {good}" in capsys.readouterr().out
    cached = tmp_path / "weights" / "syncnet_v2.model"
    data = cached.read_bytes()
    cached.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # a cached file changed after the download
    assert main(["weights", "fetch", "syncnet-v2", "--no-progress"]) == 1
    assert "delete it and fetch again" in capsys.readouterr().err


def test_entries_without_a_url_or_converter_say_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AVSYNC_CACHE_DIR", str(tmp_path))
    assert main(["weights", "fetch", "vocalist-lrs2"]) == 1
    assert "drive.google.com" in capsys.readouterr().err
    from avsync.weights import WeightsError, convert

    with pytest.raises(WeightsError, match="no converter"):
        convert("s3fd")
    assert not (tmp_path / "weights" / "sfd_face.pth").exists(), "nothing is downloaded for nothing"


def _authors_synchronizability_state(arch: str = "synchformer_toy") -> dict[str, torch.Tensor]:
    """A random state dict in the layout of the authors' ``GlobalTransformerWithSyncabilityHead``
    model (13 segments, ``transformer.sync_head`` Linear(D, 2), no ``off_head``) at toy size; the
    full-size key list is tests/goldens/synchformer_synchronizability_layout.json."""
    import dataclasses

    from avsync.papers.synchformer.network import SYNCHFORMER_CONFIGS, Synchformer

    cfg = dataclasses.replace(SYNCHFORMER_CONFIGS[arch], num_segments=13)
    torch.manual_seed(0)
    state = {k: v.clone() for k, v in Synchformer(cfg).state_dict().items()
             if not k.startswith("transformer.off_head.")}
    state["transformer.sync_head.weight"], state["transformer.sync_head.bias"] = torch.randn(2, cfg.dim), torch.randn(2)
    return state


def test_synchronizability_entry_fetches_and_converts(server, monkeypatch, tmp_path, real_fixtures):
    """The synchronizability checkpoint by name: served (md5 prefix), fetched, converted to a
    SynchformerSynchronizabilityModule whose score is the authors' softmax[1]; ``detect --model``
    runs it (its offsets are flat: the authors' file has no offset head)."""
    from avsync.papers.synchformer.synchronizability import SynchformerSynchronizabilityModule
    from avsync.weights import load_official

    monkeypatch.setenv("AVSYNC_CACHE_DIR", str(tmp_path))
    state = _authors_synchronizability_state()
    src = tmp_path / "served.pt"
    torch.save({"model": state, "epoch": 4}, src)
    server.files["/sa.pt"] = src.read_bytes()
    entry = catalog.OFFICIAL_WEIGHTS["synchformer-synchronizability"]
    checksum = Checksum("md5", hashlib.md5(src.read_bytes()).hexdigest()[:7], prefix=True)
    monkeypatch.setitem(catalog.OFFICIAL_WEIGHTS, entry.name, OfficialWeights(
        **{**entry.__dict__, "url": server.url("/sa.pt"), "checksum": checksum, "arch": "synchformer_toy"}))
    assert main(["weights", "fetch", entry.name, "--convert", "--no-progress"]) == 0
    assert _files(tmp_path / "weights") == sorted([f"{entry.name}.avsync.pt", entry.filename])

    module = load_official(entry.name)
    assert isinstance(module, SynchformerSynchronizabilityModule) and module.net.cfg.num_segments == 13
    token = torch.randn(5, module.net.cfg.dim)
    theirs = torch.softmax(token @ state["transformer.sync_head.weight"].T + state["transformer.sync_head.bias"], -1)
    torch.testing.assert_close(module.sync_head(token).sigmoid(), theirs[:, 1])
    own = module.net.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items() if not k.startswith("transformer.sync_head."))
    assert not module.net.transformer.off_head.weight.any() and not module.net.transformer.off_head.bias.any()

    clip = real_fixtures / LRS3_CLIP.replace("h264_orig_strict_crop_25fps_224side", "h264_uncropped_25fps_256side")
    out = tmp_path / "d.json"
    assert main(["detect", "--model", entry.name, str(clip), "--max-crops", "1", "--json", str(out)]) == 0
    (record,) = json.loads(out.read_text())
    assert record["confidence"] == pytest.approx(1 / 21)  # a flat offset curve: no offset head in the file


@pytest.mark.slow
def test_detect_weights_on_the_whole_real_clip(syncnet_official, real_fixtures, tmp_path):
    out = tmp_path / "d.json"
    assert main(["detect", "--weights", str(syncnet_official), str(real_fixtures / LRS3_CLIP), "--json", str(out)]) == 0
    (record,) = json.loads(out.read_text())
    assert record["path"].endswith("00018.mp4") and np.isfinite(record["confidence"])


@pytest.mark.slow
def test_detect_model_sparsesync_from_the_local_server_on_a_real_vggsound_clip(server, monkeypatch, tmp_path,
                                                                               real_fixtures):
    """A grid classifier by name: a random authors'-layout SparseSync wrapped as their training script
    saves it (``{'model': ..., 'epoch': ...}``), served with its md5 prefix, fetched, converted, run."""
    monkeypatch.setenv("AVSYNC_CACHE_DIR", str(tmp_path))
    src = tmp_path / "served.pt"
    torch.save({"model": _official_layout_state_dict("sparsesync"), "epoch": 30}, src)
    server.files["/ss.pt"] = src.read_bytes()
    entry = catalog.OFFICIAL_WEIGHTS["sparsesync-vggsound-sparse"]
    checksum = Checksum("md5", hashlib.md5(src.read_bytes()).hexdigest()[:7], prefix=True)
    monkeypatch.setitem(catalog.OFFICIAL_WEIGHTS, entry.name, OfficialWeights(
        **{**entry.__dict__, "url": server.url("/ss.pt"), "checksum": checksum}))
    clip = real_fixtures / "vggsound" / "h264_video_25fps_256side_16000hz_aac" / "ZYc410CE4Rg_0_10000.mp4"
    out = tmp_path / "d.json"
    assert main(["detect", "--model", entry.name, str(clip), "--max-crops", "1", "--json", str(out)]) == 0
    (record,) = json.loads(out.read_text())
    assert record["confidence_kind"] == "mean probability" and -2.0 <= record["offset_sec"] <= 2.0
    assert _files(tmp_path / "weights") == sorted([f"{entry.name}.avsync.pt", entry.filename])


def test_synchronizability_converter_takes_the_authors_full_size_layout():
    """The key names and shapes of the authors' ``ft_synchability.yaml`` model (written from their
    code, tests/goldens/synchformer_synchronizability_layout.json; meta tensors, no data) convert into
    exactly the state of the paper-size SynchformerSynchronizabilityModule."""
    from pathlib import Path

    from avsync.registry import get_converter
    from avsync.papers.synchformer.synchronizability import SynchformerSynchronizabilityModule
    from avsync.papers.synchformer.network import Synchformer, get_config

    layout = read_layout(Path(__file__).parents[1] / "goldens" / "synchformer_synchronizability_layout.json")
    state = {k: torch.empty(shape, device="meta") for k, shape in layout.items()}
    ckpt = get_converter("synchformer_synchronizability").lightning_checkpoint(state)
    hparams = {k: v for k, v in ckpt["hyper_parameters"].items() if k != "_class_path"}
    assert hparams["arch_overrides"] == {"num_segments": 13} and hparams["tune"] == "head"
    with torch.device("meta"):
        net = Synchformer(get_config("synchformer", hparams["arch_overrides"]))
    net_shapes = {f"net.{k}": tuple(v.shape) for k, v in net.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()} == {
        **net_shapes, "sync_head.sync_head.weight": (1, 768), "sync_head.sync_head.bias": (1,)}
    assert SynchformerSynchronizabilityModule.__name__ in ckpt["hyper_parameters"]["_class_path"]
