"""SSIM and PSNR against paired ground truth: identical images, a known MSE, a hand-computed SSIM that pins
the [0, 1] scale, batches, and the unavailable path."""

import json

import numpy as np
import pytest

from legan_tf.evaluation import metrics
from legan_tf.evaluation.metrics.base import MetricResult
from tests.evaluation.metrics.conftest import images

SIZE = 16  # SSIM's 11 px window fits


def test_identical_images_give_ssim_one_and_infinite_psnr():
    batch = images(5, size=SIZE, seed=0)
    ssim = metrics.get("ssim")().compute(outputs=batch, targets_paired=batch)
    psnr = metrics.get("psnr")().compute(outputs=batch, targets_paired=batch)
    # SSIM of identical images is (2 mu^2 + C1)(2 s^2 + C2) / ((2 mu^2 + C1)(2 s^2 + C2)); float32 evaluation of
    # numerator and denominator alike differs by a few ulps (6e-8).
    assert ssim.values["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert psnr.values["psnr"] == float("inf") and psnr.values["identical_pairs"] == 5
    assert np.isnan(psnr.values["psnr_excluding_identical"])
    text = json.dumps(psnr.to_json(), allow_nan=False)  # strict JSON: inf written as "inf"
    assert MetricResult.from_json(json.loads(text)).values["psnr"] == float("inf")


def test_a_known_mse_gives_the_known_psnr():
    """A difference of 0.2 on [-1, 1] is 0.1 on [0, 1]: MSE 0.01, PSNR = 10 log10(1 / 0.01) = 20 dB."""
    truth = np.zeros((3, SIZE, SIZE, 3), np.float32)
    outputs = truth.copy()
    outputs[0] += 0.2
    outputs[1] -= 0.2
    outputs[2, :, : SIZE // 2] += 0.4  # half the pixels off by 0.2 on [0, 1]: MSE 0.02, PSNR 10 log10(50)
    result = metrics.get("psnr")().compute(outputs=outputs, targets_paired=truth)
    expected = np.array([20.0, 20.0, 10 * np.log10(50.0)])
    # float32: 0.1 squared and averaged carries a relative error of a few 1e-7, i.e. ~1e-6 dB (10/ln 10 * 1e-7).
    np.testing.assert_allclose(result.arrays["per_image"], expected, atol=1e-5)
    assert result.values["psnr"] == pytest.approx(expected.mean(), abs=1e-5)
    assert result.values["identical_pairs"] == 0 and result.values["count"] == 3


def test_ssim_of_two_flat_images_is_its_luminance_term():
    """Flat images have no variance, so SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1), C1 = (0.01 * 1)^2.
    On [0, 1]: mu_x = 0.5, mu_y = 0.25 (0 and -0.5 on [-1, 1]): 0.2501 / 0.3126. The same images on
    [-1, 1] with max_val = 2 would give (0 + 4e-4) / (0.25 + 4e-4) = 0.0016: this pins the scale."""
    outputs = np.zeros((1, SIZE, SIZE, 3), np.float32)
    truth = np.full((1, SIZE, SIZE, 3), -0.5, np.float32)
    result = metrics.get("ssim")().compute(outputs=outputs, targets_paired=truth)
    # The contrast-structure term is C2 / C2 = 1 up to float32 cancellation in E[xy] - E[x] E[y] (and the
    # variances): each E is a 121-tap Gaussian sum of values ~0.25, whose float32 error is at most
    # 121 * 6e-8 * 0.25 = 1.8e-6, against C2 = 9e-4: at most 2e-3 relative (seen: 1.3e-4). Far from 0.0016.
    assert result.values["ssim"] == pytest.approx(0.2501 / 0.3126, rel=2.5e-3)
    assert result.protocol["scale"].startswith("[0, 1]") and result.protocol["filter_size"] == 11


def test_batches_give_the_mean_over_all_pairs():
    outputs, truth = images(10, size=SIZE, seed=1), images(10, size=SIZE, seed=2)
    whole = metrics.get("ssim")(batch_size=64).compute(outputs=outputs, targets_paired=truth)
    split = metrics.get("ssim")(batch_size=3)
    split.update(outputs=outputs[:4], targets_paired=truth[:4])
    split.update(outputs=outputs[4:], targets_paired=truth[4:])
    # Per-image SSIM does not depend on the batch; float32 batched convolutions may round differently.
    np.testing.assert_allclose(split.result().arrays["per_image"], whole.arrays["per_image"], atol=1e-6)
    assert whole.values["count"] == 10 and 0 < whole.values["ssim"] < 1


def test_no_paired_truth_is_unavailable_and_bad_inputs_are_errors():
    result = metrics.get("ssim")().result()
    assert not result.available and "no paired ground truth" in result.reason
    with pytest.raises(ValueError, match="together"):
        metrics.get("psnr")().update(outputs=images(2, size=SIZE))
    with pytest.raises(ValueError, match="at least 11 px"):
        metrics.get("ssim")().update(outputs=images(2, size=8), targets_paired=images(2, size=8))
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.get("psnr")().update(outputs=images(2, size=SIZE), targets_paired=images(2, size=12))
