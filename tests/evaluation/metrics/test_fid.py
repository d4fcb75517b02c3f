"""FID: the Frechet distance in closed form and from samples, its statistics over batches, the metric on a
stand-in feature network, and every way Inception-v3's weights cannot be had (unavailable, or a ConfigError)."""

import hashlib
import json

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.legacy.saving import legacy_h5_format

from legan_tf.errors import ConfigError
from legan_tf.evaluation import metrics
from legan_tf.evaluation.metrics import features, fid
from legan_tf.evaluation.metrics.fid import GaussianStatistics, frechet_distance
from legan_tf.models.weights import load_all_weights
from tests.evaluation.metrics.conftest import channel_mean_network, images, unused_port

# Closed-form cases are ~1 in size; sqrtm (Schur method, backward stable) and the traces lose a few
# hundred float64 ulps (2.2e-16 each) on these well-conditioned 3-4 dimensional matrices, far below 1e-9.
CLOSED_FORM_TOLERANCE = 1e-9

MU1, S1 = np.array([0.0, 1.0, -1.0]), np.array([1.0, 2.0, 0.5])
MU2, S2 = np.array([0.5, 0.0, -1.0]), np.array([2.0, 1.0, 0.5])


def diagonal_fid(mu1, s1, mu2, s2):
    return float(np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2.0 * np.sqrt(s1 * s2)))


def random_rotation(dimension, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(dimension, dimension)))
    return q * np.sign(np.diag(r))


def random_covariance(dimension, seed):
    a = np.random.default_rng(seed).normal(size=(dimension, dimension))
    return a @ a.T + 0.5 * np.eye(dimension)


def test_diagonal_gaussians_in_closed_form():
    expected = diagonal_fid(MU1, S1, MU2, S2)  # 1.25 + 2 (3 - 2 sqrt 2) = 1.5931...
    assert abs(expected - (1.25 + 2 * (3 - 2 * np.sqrt(2)))) < 1e-12
    assert abs(frechet_distance(MU1, np.diag(S1), MU2, np.diag(S2)) - expected) < CLOSED_FORM_TOLERANCE


def test_rotated_gaussians_keep_their_distance():
    """FID is invariant under a rotation of both Gaussians: full (non-diagonal) covariances, same closed form."""
    q = random_rotation(3, seed=1)
    value = frechet_distance(q @ MU1, q @ np.diag(S1) @ q.T, q @ MU2, q @ np.diag(S2) @ q.T)
    assert abs(value - diagonal_fid(MU1, S1, MU2, S2)) < CLOSED_FORM_TOLERANCE


def test_isotropic_against_a_full_covariance():
    """sigma1 = a I: (sigma1 sigma2)^(1/2) = sqrt(a) sigma2^(1/2), whose trace is the sum of the square roots
    of sigma2's eigenvalues: a closed form without sqrtm, for a full covariance."""
    sigma2 = random_covariance(4, seed=2)
    a = 1.7
    expected = 4 * a + np.trace(sigma2) - 2.0 * np.sqrt(a) * np.sum(np.sqrt(np.linalg.eigvalsh(sigma2)))
    assert abs(frechet_distance(np.zeros(4), a * np.eye(4), np.zeros(4), sigma2) - expected) < CLOSED_FORM_TOLERANCE


def test_symmetric_and_zero_on_identical_statistics():
    rng = np.random.default_rng(3)
    mu_a, mu_b = rng.normal(size=4), rng.normal(size=4)
    sigma_a, sigma_b = random_covariance(4, 4), random_covariance(4, 5)
    forward = frechet_distance(mu_a, sigma_a, mu_b, sigma_b)
    assert forward > 0
    assert abs(forward - frechet_distance(mu_b, sigma_b, mu_a, sigma_a)) < CLOSED_FORM_TOLERANCE
    assert abs(frechet_distance(mu_a, sigma_a, mu_a, sigma_a)) < CLOSED_FORM_TOLERANCE


def test_from_large_samples_within_the_sampling_error():
    n = 50_000
    rng = np.random.default_rng(6)
    x = MU1 + np.sqrt(S1) * rng.normal(size=(n, 3))
    y = MU2 + np.sqrt(S2) * rng.normal(size=(n, 3))
    estimate = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    truth = diagonal_fid(MU1, S1, MU2, S2)
    # The bound follows from the sampling error, to first order (delta method):
    # - mean term |mu1 - mu2|^2: the sample mean difference has covariance (S1 + S2) / n, so the term is
    #   biased by tr(S1 + S2) / n and has sd sqrt(4 dmu' (S1 + S2) dmu / n);
    # - trace term at diagonal covariances: its derivative in S1_ii is 1 - sqrt(s2_i / s1_i) (and
    #   symmetrically), and a sample variance has variance 2 s^2 / (n - 1), so its sd is
    #   sqrt(sum_i 2 ((s1_i - sqrt(s1_i s2_i))^2 + (s2_i - sqrt(s1_i s2_i))^2) / (n - 1));
    # - second-order terms (off-diagonal sample covariances, of sd sqrt(s_i s_j / n)) are at most of order
    #   d^2 max(s)^2 / (n min(s)).
    # The estimate must lie within 5 sd (two-sided normal tail 6e-7) plus the bias and second-order terms.
    dmu = MU1 - MU2
    sd_mean = np.sqrt(4.0 * dmu @ ((S1 + S2) * dmu) / n)
    root = np.sqrt(S1 * S2)
    sd_trace = np.sqrt(np.sum(2.0 * ((S1 - root) ** 2 + (S2 - root) ** 2)) / (n - 1))
    bias = np.sum(S1 + S2) / n
    second_order = 3 ** 2 * max(S1.max(), S2.max()) ** 2 / (n * min(S1.min(), S2.min()))
    bound = 5.0 * np.hypot(sd_mean, sd_trace) + bias + second_order
    assert bound < 0.1 * truth  # the test is sharp enough to catch a wrong term
    assert abs(estimate - truth) < bound


def test_a_non_finite_root_adds_eps_and_says_so(monkeypatch):
    calls = []
    real_sqrtm = fid.linalg.sqrtm

    def first_call_fails(matrix):
        calls.append(matrix)
        return np.full_like(matrix, np.nan) if len(calls) == 1 else real_sqrtm(matrix)

    monkeypatch.setattr(fid.linalg, "sqrtm", first_call_fails)
    notes = []
    value = frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), eps=1e-6, notes=notes)
    assert len(calls) == 2 and np.allclose(calls[1], (1 + 1e-6) ** 2 * np.eye(2))
    assert "1e-06 * I was added" in notes[0]
    # As in pytorch-fid, only the root is regularised; the traces stay those of the given covariances:
    # 2 tr(I) - 2 tr((1 + eps) I) = -2 d eps.
    assert abs(value - (-2 * 2 * 1e-6)) < CLOSED_FORM_TOLERANCE


def test_statistics_over_batches_equal_numpy_on_all_rows():
    rows = np.random.default_rng(7).normal(3.0, 2.0, size=(1000, 5))
    statistics = GaussianStatistics()
    for part in np.split(rows, [1, 37, 400, 999]):  # uneven batches, two of a single row
        statistics.update(part)
    assert statistics.count == 1000
    # Chan's merge is exact algebra; what is left is float64 round-off of sums of 1000 values ~10.
    np.testing.assert_allclose(statistics.mean, rows.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(statistics.covariance, np.cov(rows, rowvar=False), rtol=0, atol=1e-11)


def test_metric_on_a_stand_in_network(mean_extractor):
    metric = metrics.get("fid")(extractor=mean_extractor, batch_size=7, context={"reference": "test split"})
    outputs, reals = images(40, seed=1), images(30, size=12, seed=2, low=-0.5)
    metric.update(outputs=outputs[:25])
    metric.update(outputs=outputs[25:], reals=reals)
    result = metric.result()
    expected = frechet_distance(mean_extractor(outputs).mean(0), np.cov(mean_extractor(outputs), rowvar=False),
                                mean_extractor(reals).mean(0), np.cov(mean_extractor(reals), rowvar=False))
    # The features are float32 (relative round-off 6e-8) and come out of differently composed batches,
    # so FIDs ~1 of the same images agree to ~1e-7, not to float64's round-off.
    assert result.available and abs(result.values["fid"] - expected) < 1e-6
    assert result.protocol["num_outputs"] == 40 and result.protocol["num_reals"] == 30
    assert result.protocol["reference"] == "test split" and result.protocol["image_size"] == 8
    assert "bilinear" in result.protocol["resize_filter"] and result.protocol["weights"] == "stand-in"
    json.dumps(result.to_json(), allow_nan=False)
    same = metrics.get("fid")(extractor=mean_extractor).compute(outputs=outputs, reals=outputs)
    assert abs(same.values["fid"]) < CLOSED_FORM_TOLERANCE


def test_fewer_images_than_features_keep_the_value_and_say_so(mean_extractor):
    """n <= d: the covariances are rank-deficient; the value stays in the result (protocol mark and a note) for
    comparisons at equal n, and the report prints no number: its cell points to a footnote saying why."""
    from legan_tf.evaluation import report

    few = metrics.get("fid")(extractor=mean_extractor).compute(outputs=images(3, seed=1), reals=images(4, seed=2))
    assert few.available and np.isfinite(few.values["fid"])
    assert few.protocol["covariance_rank_deficient"] is True  # 3 features, 3 outputs: rank <= 2
    assert few.notes == [fid.rank_deficiency_note(3, 4, 3)]
    assert "n=3 outputs and 4 reals" in few.notes[0] and "only comparable at equal n" in few.notes[0]
    cells = report.Cells()
    assert report._fid(few, cells, "LEGAN") == "n/a [1]"
    assert cells.footnotes() == [f"[1] FID: too few images for a meaningful FID: {few.notes[0]}"]
    enough = metrics.get("fid")(extractor=mean_extractor).compute(outputs=images(5, seed=1), reals=images(4, seed=2))
    assert enough.protocol["covariance_rank_deficient"] is False and enough.notes == []
    assert report._fid(enough, report.Cells(), "LEGAN") == f"{enough.values['fid']:.2f}"


def test_extractor_resizes_quantizes_and_feeds_minus_one_to_one():
    """Constant images keep their value through a bilinear resize; quantizing rounds it to an 8-bit level."""
    levels = np.array([-1.0, -0.3, 0.0, 0.77, 1.0], np.float32)
    batch = np.ones((5, 5, 5, 3), np.float32) * levels[:, None, None, None]
    exact = features.FeatureExtractor(channel_mean_network(8), image_size=8, quantize=False)(batch)
    quantized = features.FeatureExtractor(channel_mean_network(8), image_size=8, quantize=True)(batch)
    # float32 resize weights sum to 1 within a few ulps (6e-8 each) of values <= 1.
    np.testing.assert_allclose(exact, np.repeat(levels[:, None], 3, 1), atol=1e-6)
    np.testing.assert_allclose(quantized, np.repeat(np.round((levels[:, None] + 1) * 127.5) / 127.5 - 1, 3, 1),
                               atol=1e-6)
    with pytest.raises(ValueError, match=r"must be in \[-1, 1\]"):
        features.FeatureExtractor(channel_mean_network(8), image_size=8)(batch * 255)


def test_no_weights_is_unavailable_not_random():
    for weights in (None, "", "none"):
        result = metrics.get("fid")(weights=weights).compute(outputs=images(3), reals=images(3))
        assert not result.available and "no Inception-v3 weights given" in result.reason
        assert "fid" not in result.values


def test_imagenet_without_a_download_is_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(features, "INCEPTION_NOTOP_URL", f"http://127.0.0.1:{unused_port()}/inception_notop.h5")
    result = metrics.get("fid")(weights="imagenet").result()
    assert not result.available
    assert "cannot download Inception-v3's ImageNet weights" in result.reason
    assert str(tmp_path / "models" / features.INCEPTION_NOTOP_FILE) in result.reason


@pytest.fixture
def small_inception(monkeypatch):
    """Replaces InceptionV3 by a small network for the weights-file plumbing (the real one has 22M parameters)."""
    def build():
        inputs = keras.Input((None, None, 3))  # takes the 299 px the extractor feeds
        hidden = keras.layers.Conv2D(4, 3, name="conv")(inputs)
        return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(hidden), name="small_inception")
    monkeypatch.setattr(features, "_build_inception", build)
    monkeypatch.setattr(features, "_LOADED", {})
    return build


def test_imagenet_uses_the_cached_file_offline(monkeypatch, tmp_path, small_inception):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    cached = tmp_path / "models" / features.INCEPTION_NOTOP_FILE
    with h5py.File(cached, "w") as weights_file:  # the published file's layout: legacy Keras-2 HDF5
        legacy_h5_format.save_weights_to_hdf5_group(weights_file, small_inception())
    monkeypatch.setattr(features, "INCEPTION_NOTOP_MD5", hashlib.md5(cached.read_bytes()).hexdigest())
    monkeypatch.setattr(features, "INCEPTION_NOTOP_URL", f"http://127.0.0.1:{unused_port()}/never_fetched.h5")
    extractor = features.inception_features("imagenet")
    assert extractor.source.startswith("imagenet") and extractor.image_size == features.INCEPTION_SIZE


def test_fid_and_kid_share_one_network_and_its_feature_cache(tmp_path, small_inception):
    path = str(tmp_path / "small.weights.h5")
    small_inception().save_weights(path)
    fid_metric, kid_metric = metrics.get("fid")(weights=path), metrics.get("kid")(weights=path)
    assert fid_metric.extractor is kid_metric.extractor
    calls = []
    network = fid_metric.extractor.network
    fid_metric.extractor.network = lambda batch: calls.append(len(batch)) or network(batch)
    batch = images(4, size=8)
    metrics.update_all([fid_metric, kid_metric], outputs=batch, reals=batch)
    assert calls == [4]  # one pass through the network for four feature requests of one batch


def test_given_weights_files_that_do_not_fit_are_config_errors(monkeypatch, tmp_path, small_inception):
    with pytest.raises(ConfigError, match="weights file not found"):
        metrics.get("fid")(weights=str(tmp_path / "absent.h5"))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="not a weights file"):
        metrics.get("kid")(weights=str(tmp_path / "weights.bin"))
    (tmp_path / "weights.npz").write_bytes(b"x")  # an .npz is taken for the FID Inception (test_fid_inception.py)
    with pytest.raises(ConfigError, match="weights.npz: not an .npz of the FID Inception-v3"):
        metrics.get("kid")(weights=str(tmp_path / "weights.npz"))
    (tmp_path / "broken.h5").write_bytes(b"not hdf5")
    with pytest.raises(ConfigError, match="not weights of InceptionV3"):
        metrics.get("fid")(weights=str(tmp_path / "broken.h5"))
    inputs = keras.Input((8, 8, 3))
    other = keras.Model(inputs, keras.layers.Dense(2, name="other")(inputs))
    other.save_weights(str(tmp_path / "other.weights.h5"))
    with pytest.raises(ConfigError, match="not weights of InceptionV3"):
        metrics.get("fid")(weights=str(tmp_path / "other.weights.h5"))


def test_a_load_that_leaves_variables_unset_is_refused(tmp_path, small_inception):
    model = small_inception()
    model.load_weights = lambda path: None  # as Keras does with a file of other layers
    with pytest.raises(ConfigError, match=r"variables \(e.g. .*\) are not in the file"):
        load_all_weights(model, str(tmp_path / "x.h5"), "--inception_weights=x.h5", "InceptionV3", "hint")


def test_the_real_inception_wiring(tmp_path, monkeypatch):
    """The one test that builds InceptionV3 (random weights, ~22M parameters, a few seconds): a .weights.h5
    of it loads, and the features are the network's on the images resized to 299 px in [-1, 1]."""
    monkeypatch.setattr(features, "_LOADED", {})
    reference = features._build_inception()
    path = str(tmp_path / "inception.weights.h5")
    reference.save_weights(path)
    extractor = features.inception_features(path, quantize=True)
    batch = images(2, size=16, seed=9)
    quantized = np.round((batch + 1) * 127.5) / 127.5 - 1
    resized = tf.image.resize(quantized, (299, 299), method="bilinear", antialias=True)
    expected = reference(tf.clip_by_value(resized, -1.0, 1.0), training=False).numpy()
    got = extractor(batch)
    assert got.shape == (2, features.INCEPTION_FEATURES)
    # Same weights, same inputs; the two graphs may order float32 sums differently (~1e-6 relative).
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
