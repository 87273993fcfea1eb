"""reproductions/vocalist/findings.py states what holds and what does not from the stage results."""
import importlib.util
import json

from avsync.reproduce import REPRODUCTIONS


def _findings():
    spec = importlib.util.spec_from_file_location("vocalist_findings", REPRODUCTIONS / "vocalist" / "findings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(tmp_path, stage, contexts, values):
    (tmp_path / stage).mkdir()
    test = {f"test/acc_tol_{n}f": v for n, v in zip(contexts, values)}
    (tmp_path / stage / "result.json").write_text(json.dumps({"stage": stage, "test": test}))


def test_findings_read_the_stage_results(tmp_path):
    f = _findings()
    _write(tmp_path, "speech_syncnet", f.SPEECH_CONTEXTS, [0.3, 0.4, 0.5, 0.6, 0.65, 0.7])
    _write(tmp_path, "speech_vocalist", f.SPEECH_CONTEXTS, [0.1] * 6)
    _write(tmp_path, "speech_syncnet_on_speech_tol5", f.SINGING_CONTEXTS, [0.8, 0.9, 0.95, 0.97, 0.98])
    _write(tmp_path, "speech_syncnet_on_singing", f.SINGING_CONTEXTS, [0.5, 0.6, 0.7, 0.8, 0.85])
    _write(tmp_path, "singing_syncnet", f.SINGING_CONTEXTS, [0.55, 0.6, 0.7, 0.75, 0.8])
    text = "\n".join(f.findings(f.load_results(tmp_path)))
    assert "| SyncNet (toy) | 30.0 | 40.0 | 50.0 | 60.0 | 65.0 | 70.0 | holds |" in text
    assert "| VocaLiST (toy) |" in text and "at chance: no finding" in text
    assert "(5 of 5 contexts favour speech, 5 by more than the ~10-point noise): **holds**" in text
    assert "singing +35.0 points, speech +18.0: **holds**" in text
    assert "-5.0 | 0.0 | 0.0 | 5.0 | 5.0 points" in text


def test_findings_say_when_a_finding_does_not_hold(tmp_path):
    f = _findings()
    _write(tmp_path, "speech_syncnet", f.SPEECH_CONTEXTS, [0.7, 0.6, 0.5, 0.5, 0.5, 0.4])
    _write(tmp_path, "speech_syncnet_on_speech_tol5", f.SINGING_CONTEXTS, [0.6, 0.62, 0.64, 0.66, 0.7])
    _write(tmp_path, "speech_syncnet_on_singing", f.SINGING_CONTEXTS, [0.7, 0.7, 0.7, 0.7, 0.7])
    text = "\n".join(f.findings(f.load_results(tmp_path)))
    assert "| 40.0 | does not hold |" in text
    assert "(0 of 5 contexts favour speech, 0 by more than the ~10-point noise): **does not hold**" in text
    assert "singing +0.0 points, speech +10.0: **does not hold**" in text


def test_table2_findings_are_checked_per_model_family(tmp_path):
    f = _findings()
    _write(tmp_path, "speech_vocalist", f.SPEECH_CONTEXTS, [0.4, 0.5, 0.6, 0.7, 0.75, 0.8])
    _write(tmp_path, "speech_vocalist_on_speech_tol5", f.SINGING_CONTEXTS, [0.7, 0.8, 0.9, 0.95, 0.97])
    _write(tmp_path, "speech_vocalist_on_singing", f.SINGING_CONTEXTS, [0.4, 0.5, 0.6, 0.7, 0.8])
    _write(tmp_path, "singing_vocalist", f.SINGING_CONTEXTS, [0.45, 0.5, 0.6, 0.7, 0.75])
    text = "\n".join(f.findings(f.load_results(tmp_path)))
    assert "| VocaLiST trained on singing | singing | 45.0 | 50.0 | 60.0 | 70.0 | 75.0 |" in text
    assert "Speech-trained VocaLiST, speech minus singing at ±5 frames: 30.0 | 30.0 | 30.0 | 25.0 | 17.0" in text
    assert "Gain from 5 to 25 frames (speech-trained VocaLiST, ±5): singing +40.0 points, speech +27.0: **holds**" in text
    assert "-5.0 | 0.0 | 0.0 | 0.0 | 5.0 points" in text
    # SyncNet stages absent: its findings say so instead of inventing figures
    assert "## SyncNet: 2. Singing is harder than speech at equal context\n\nNot shown" in text
