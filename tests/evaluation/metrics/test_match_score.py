"""Match score: cosine similarity of known embeddings, the metric on a stand-in identity network, its
independence note, and the distribution figure."""

import numpy as np
import pytest
from PIL import Image

from legan_tf.evaluation import metrics
from legan_tf.evaluation.metrics.match_score import match_scores, plot_match_scores
from tests.evaluation.metrics.conftest import images

# Cosines of unit vectors in float32 (identity_loss works in float32): a few ulps of 1 (6e-8 each).
FLOAT32_TOLERANCE = 1e-6


def test_known_embeddings():
    a = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [3.0, 4.0, 0.0], [1.0, 1.0, 1.0]])
    b = np.array([[5.0, 0.0, 0.0], [0.0, 0.0, 7.0], [-3.0, -4.0, 0.0], [1.0, 1.0, 0.0]])
    expected = [1.0, 0.0, -1.0, 2.0 / (np.sqrt(3.0) * np.sqrt(2.0))]  # same, orthogonal, opposite, 35.3 degrees
    np.testing.assert_allclose(match_scores(a, b), expected, atol=FLOAT32_TOLERANCE)


class MeanColourEmbedder:
    """A stand-in identity network: the embedding of a face is its mean colour (RGB in [-1, 1])."""

    image_size = 8  # declared like the project's networks: inputs are resized to it

    def __call__(self, batch):
        assert batch.shape[1:3] == (8, 8)
        return batch.mean(axis=(1, 2))


def flat(colours, size=16):
    """Faces of one colour each: resizing keeps it (the filter's weights sum to 1), so the embedding is known."""
    return np.ones((len(colours), size, size, 3), np.float32) * colours[:, None, None, :].astype(np.float32)


def test_metric_on_a_stand_in_identity_network():
    rng = np.random.default_rng(0)
    colours_in = rng.uniform(-1, 1, (12, 3))
    colours_out = colours_in.copy()
    colours_out[6:] = rng.uniform(-1, 1, (6, 3))  # the second half: another colour
    metric = metrics.get("match_score")(identity_model=MeanColourEmbedder(), identity_source="stand-in", batch_size=5)
    result = metric.compute(inputs=flat(colours_in), outputs=flat(colours_out))
    norms = np.linalg.norm(colours_in, axis=1) * np.linalg.norm(colours_out, axis=1)
    expected = np.sum(colours_in * colours_out, axis=1) / norms
    # float32 resize (weights summing to 1 within a few ulps) and float32 cosines: ~1e-6.
    np.testing.assert_allclose(result.arrays["per_pair"], expected, atol=1e-5)
    np.testing.assert_allclose(result.arrays["per_pair"][:6], 1.0, atol=1e-5)
    assert result.values["match_score"] == pytest.approx(expected.mean(), abs=1e-5)
    assert result.values["count"] == 12 and result.protocol["identity_network"] == "stand-in"
    assert result.protocol["model_input_resize"]["to"] == [8, 8]
    assert result.notes == []


def test_used_in_training_is_noted_and_no_network_is_unavailable():
    batch = images(3, size=8)
    noted = metrics.get("match_score")(identity_model=MeanColourEmbedder(), used_in_training=True)
    assert "not an independent measure" in noted.compute(inputs=batch, outputs=batch).notes[0]
    result = metrics.get("match_score")().compute(inputs=batch, outputs=batch)
    assert not result.available and "no identity network given" in result.reason


def test_distribution_figure(tmp_path):
    rng = np.random.default_rng(1)
    results = {}
    for name, centre in (("LEGAN", 0.8), ("StarGAN", 0.6)):
        embedder = MeanColourEmbedder()
        metric = metrics.get("match_score")(identity_model=embedder)
        metric.scores = [np.clip(rng.normal(centre, 0.1, 200), -1, 1)]
        results[name] = metric.result()
    results["no network"] = metrics.get("match_score")().result()
    path = plot_match_scores(results, str(tmp_path / "match.png"))
    with Image.open(path) as picture:
        width, height = picture.size
    assert width >= 600 and height >= 3 * 150  # 7 in at 110 dpi; ~1.9 in per panel
