"""Title verdicts from synthetic clip-offset series: RANSAC line fit and the six classes."""
import numpy as np
import pytest

from avsync.title.timeline import TitleThresholds, classify_title, keep_confident, ransac_line

FPS = 25.0
FRAME_MS = 40.0
T = np.linspace(0, 5400, 60)  # a 90-minute title, one clip every 1.5 minutes


def quantised(offset_ms):
    """Predictions come in whole frames."""
    return np.round(np.asarray(offset_ms) / FRAME_MS) * FRAME_MS


def with_outliers(y, idx=(3, 17, 40), values=(-400.0, 280.0, 520.0)):
    y = np.array(y, dtype=float)
    y[list(idx)] = values
    return y


def verdict(y, confidence=None, **overrides):
    conf = np.ones(len(y)) if confidence is None else confidence
    return classify_title(T, y, conf, TitleThresholds.for_fps(FPS, **overrides))


@pytest.mark.parametrize("series, kind", [
    (np.zeros(60), "in sync"),
    (np.full(60, 120.0), "constant lead"),
    (np.full(60, -160.0), "constant lag"),
    (quantised(T / 5400 * 200.0), "drift early"),              # audio ends up 200 ms early
    (quantised(-40.0 - T / 5400 * 160.0), "drift late"),
])
def test_classes_with_outliers(series, kind):
    out = verdict(with_outliers(series))
    assert out.kind == kind
    assert out.agreement == pytest.approx(57 / 60)
    assert not out.inlier[[3, 17, 40]].any()


def test_intermittent_when_no_line_explains_the_clips():
    rng = np.random.default_rng(0)
    jumps = quantised(rng.choice([0.0, 200.0, -240.0], size=60))
    out = verdict(jumps)
    assert out.kind == "intermittent"
    assert out.agreement < 0.6


def test_half_in_sync_half_offset_is_intermittent():
    out = verdict(np.where(T < 2700, 0.0, 200.0))
    assert out.kind == "intermittent"


def test_low_confidence_clips_are_dropped_before_the_fit():
    y = np.full(60, 120.0)
    y[::2] = 0.0  # off-screen dialogue: wrong offsets, but the model is unsure about them
    conf = np.where(np.arange(60) % 2 == 0, 0.1, 5.0)
    out = verdict(y, conf)
    assert out.kind == "constant lead" and out.agreement == 1.0
    assert not out.kept[::2].any() and out.kept[1::2].all()
    assert verdict(y).kind == "intermittent"  # keeping them would make the title look broken


def test_too_few_confident_clips_is_undetermined():
    out = classify_title([0.0, 10.0], [0.0, 0.0], [1.0, 1.0])
    assert out.kind == "undetermined" and out.offset_ms is None


def test_ransac_recovers_the_line():
    y = 12.0 + 0.5 * T
    fit = ransac_line(T, with_outliers(y), inlier_ms=1.0)
    assert fit.slope_ms_per_sec == pytest.approx(0.5)
    assert fit.intercept_ms == pytest.approx(12.0)
    assert fit.inliers.sum() == 57


def test_absolute_confidence_threshold():
    th = TitleThresholds(min_confidence=2.0)
    np.testing.assert_array_equal(keep_confident([1.0, 2.0, 3.0], th), [False, True, True])


def test_drift_levels_reported_in_ms():
    out = verdict(T / 5400 * 200.0)
    assert out.start_offset_ms == pytest.approx(0.0, abs=1e-6)
    assert out.end_offset_ms == pytest.approx(200.0)
    assert out.slope_ms_per_min == pytest.approx(200.0 / 90)


def test_bad_series_rejected():
    with pytest.raises(ValueError, match="confidences"):
        classify_title([0.0, 1.0, 2.0], [0.0, 0.0, 0.0], [1.0, 1.0])
