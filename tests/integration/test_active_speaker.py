"""Active speaker detection on toy scenes: one synthetic speaker, one silent face per scene.

The scores come from :class:`avsync.toy.oracle.ToyOracleScorer` (built on the toy generator's
ground truth: mouth height and voice loudness follow one envelope) — the point is the decision
pipeline (confidence per crop, threshold, F1), not a trained model.
"""
import numpy as np
import pytest
import torch

from avsync.evaluation.active_speaker import asd_f1, best_threshold, detect_active_speakers
from avsync.toy.oracle import ToyOracleScorer
from avsync.toy.title import render_title

SEARCH = dict(fps=25.0, sample_rate=16000, window_frames=10, max_shift=15, batch_windows=200)


def scene(seed):
    """(speaker crop, silent face crop, audio): the silent face mouths another, unheard voice."""
    speaker = render_title(3.0, np.zeros_like, seed=seed)
    listener = render_title(3.0, np.zeros_like, seed=seed + 100)
    return torch.from_numpy(speaker.frames), torch.from_numpy(listener.frames), torch.from_numpy(speaker.audio)


def test_speaker_and_silent_face_told_apart_f1_one():
    confidences, labels = [], []
    for seed in range(3):
        speaker, silent, audio = scene(seed)
        still = speaker[:1].expand_as(speaker).clone()  # a face that never moves its lips
        decisions = detect_active_speakers(ToyOracleScorer(), [speaker, silent, still], audio, threshold=0.7,
                                           **SEARCH)
        assert [d.speaking for d in decisions] == [True, False, False]
        assert decisions[0].offset_frames == 0  # the speaker is also found in sync
        assert decisions[2].confidence == pytest.approx(0.0)
        confidences += [d.confidence for d in decisions]
        labels += [True, False, False]
    assert asd_f1(confidences, labels, threshold=0.7) == pytest.approx(1.0)
    threshold = best_threshold(confidences, labels)
    assert asd_f1(confidences, labels, threshold) == pytest.approx(1.0)
    assert min(c for c, s in zip(confidences, labels) if s) > threshold > max(c for c, s in zip(confidences, labels)
                                                                               if not s)


def test_f1_counts_mistakes():
    # decisions: T, T, F, F against labels T, F, T, F -> precision 1/2, recall 1/2
    assert asd_f1([0.9, 0.8, 0.1, 0.2], [True, False, True, False], threshold=0.5) == pytest.approx(0.5)


def test_bad_inputs():
    with pytest.raises(ValueError, match="labels"):
        asd_f1([0.1, 0.2], [True], threshold=0.5)
    with pytest.raises(ValueError, match="face crop"):
        detect_active_speakers(ToyOracleScorer(), [], torch.zeros(100), threshold=0.5, **SEARCH)
