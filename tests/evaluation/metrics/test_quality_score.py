"""Quality score: a stand-in Q with known scores, outputs and real faces apart, resizing to Q's size, notes."""

import numpy as np
import pytest

from legan_tf.evaluation import metrics
from tests.evaluation.metrics.conftest import images


class BrightnessQ:
    """A stand-in Q: score = 5 + 4 * mean pixel (so 1..9), shape (B, 1) as QualityModel returns."""

    image_size = 8

    def __call__(self, batch):
        assert batch.shape[1:3] == (8, 8)
        return 5.0 + 4.0 * batch.mean(axis=(1, 2, 3))[:, None]


def flat(values, size=8):
    return np.ones((len(values), size, size, 3), np.float32) * np.asarray(values, np.float32)[:, None, None, None]


def test_known_scores_of_outputs_and_reals():
    outputs = flat([0.5, 0.0, -0.5, 0.25])   # scores 7, 5, 3, 6: mean 5.25, std sqrt(2.1875)
    reals = flat([0.75, 0.25])                 # scores 8, 6
    metric = metrics.get("quality_score")(quality_model=BrightnessQ(), quality_source="Q (other run)",
                                          used_in_training=False, batch_size=3)
    metric.update(outputs=outputs[:2])
    metric.update(outputs=outputs[2:], reals=reals)
    result = metric.result()
    # Scores are float32 (Q's arithmetic on values of 8-bit-like precision): ~1e-6 of a score ~5.
    assert result.values["quality_outputs"] == pytest.approx(5.25, abs=1e-5)
    assert result.values["quality_outputs_std"] == pytest.approx(np.sqrt(2.1875), abs=1e-5)
    assert result.values["quality_reals"] == pytest.approx(7.0, abs=1e-5)
    assert result.values["count_outputs"] == 4 and result.values["count_reals"] == 2
    np.testing.assert_allclose(result.arrays["outputs"], [7, 5, 3, 6], atol=1e-5)
    assert result.protocol["quality_model"] == "Q (other run)" and result.notes == []


def test_images_are_resized_to_q_and_one_dimensional_scores_work():
    q = lambda batch: 5.0 + 4.0 * batch.mean(axis=(1, 2, 3))  # noqa: E731  (B,) scores, no declared size
    result = metrics.get("quality_score")(quality_model=q).compute(outputs=flat([0.5, 0.5], size=4))
    assert result.values["quality_outputs"] == pytest.approx(7.0, abs=1e-5)
    resized = metrics.get("quality_score")(quality_model=BrightnessQ()).compute(outputs=flat([0.5], size=32))
    assert resized.values["quality_outputs"] == pytest.approx(7.0, abs=1e-5)
    assert resized.protocol["model_input_resize"] == {"from": [32, 32], "to": [8, 8],
                                                      "filter": "bilinear, antialiased (tf.image.resize)"}
    assert "no real-face baseline" in resized.notes[0]


def test_notes_and_unavailable():
    trained = metrics.get("quality_score")(quality_model=BrightnessQ(), used_in_training=True)
    assert "trained against" in trained.compute(outputs=flat([0.0])).notes[0]
    result = metrics.get("quality_score")().compute(outputs=images(2))
    assert not result.available and result.reason == "no quality model Q given"
