"""SSIM and PSNR of the outputs against their paired ground truth (`tf.image.ssim`, `tf.image.psnr`).

Both are computed per image pair on the [0, 1] scale, `(x + 1) / 2`, with `max_val=1`. The scale
matters for SSIM: its luminance term (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) is not invariant to
shifting the pixel values, so SSIM on [-1, 1] with max_val=2 is another number; [0, 1] (equivalently
0..255 with max_val=255) is the usual one. SSIM has TensorFlow's defaults, those of Wang et al. 2004:
an 11x11 Gaussian window of sigma 1.5, k1 = 0.01, k2 = 0.03, 'valid' filtering, the mean over the
map and then over the channels; images need at least 11 px a side. RGB images are compared per
channel (no conversion to luma).

PSNR of identical images is infinite (tf.image.psnr's log of a zero MSE), and is kept so, not capped:
a cap would be below some real PSNRs of large images. `psnr` is the mean over pairs (so inf when any
pair is identical), `identical_pairs` counts them and `psnr_excluding_identical` is the mean over the
others. In JSON, inf is written "inf" (`MetricResult.to_json`).
"""

from __future__ import annotations

import numpy as np

from legan_tf.evaluation.metrics.base import Metric, MetricResult, as_images, register

SSIM_SETTINGS = {"filter_size": 11, "filter_sigma": 1.5, "k1": 0.01, "k2": 0.03}
SCALE = "[0, 1] ((x + 1) / 2), max_val=1"


class _PairedImageMetric(Metric):
    needs = frozenset({"outputs", "targets_paired"})
    paired = True
    min_size = 1

    def __init__(self, keep_per_image: bool = True, batch_size: int = 64, context=None):
        self.keep_per_image = bool(keep_per_image)
        super().__init__(batch_size=batch_size, context=context)

    def reset(self) -> None:
        self.per_image = []

    def _update(self, batch) -> None:
        import tensorflow as tf

        outputs = as_images(batch["outputs"], "outputs")
        truth = as_images(batch["targets_paired"], "targets_paired")
        if outputs.shape != truth.shape:
            raise ValueError(f"{self.name}: outputs {outputs.shape} and targets_paired {truth.shape} differ in shape")
        if min(outputs.shape[1:3]) < self.min_size:
            raise ValueError(f"{self.name}: images of {outputs.shape[1]}x{outputs.shape[2]} px; it needs at least "
                             f"{self.min_size} px a side")
        for start in range(0, len(outputs), self.batch_size):
            a = tf.constant((outputs[start:start + self.batch_size] + 1.0) / 2.0)
            b = tf.constant((truth[start:start + self.batch_size] + 1.0) / 2.0)
            self.per_image.append(np.asarray(self._score(a, b), np.float64).reshape(-1))

    def _scores(self) -> np.ndarray:
        return np.concatenate(self.per_image) if self.per_image else np.zeros(0)

    def _unfed(self) -> MetricResult:
        return MetricResult.unavailable(self.name, "no paired ground truth was given (targets_paired): "
                                                   f"{self.name.upper()} needs the true image of each output")


@register("ssim")
class SSIM(_PairedImageMetric):
    """Mean SSIM over output / ground-truth pairs (1 = identical)."""

    description = "structural similarity to the paired ground truth (higher is better, 1 = identical)"
    min_size = SSIM_SETTINGS["filter_size"]

    def _score(self, a, b):
        import tensorflow as tf

        return tf.image.ssim(a, b, max_val=1.0, **SSIM_SETTINGS)

    def protocol(self) -> dict:
        return {"scale": SCALE, "implementation": "tf.image.ssim", **SSIM_SETTINGS}

    def _result(self) -> MetricResult:
        scores = self._scores()
        if not len(scores):
            return self._unfed()
        arrays = {"per_image": scores} if self.keep_per_image else {}
        return MetricResult(self.name, True, values={"ssim": float(scores.mean()), "ssim_std": float(scores.std()),
                                                     "count": len(scores)},
                            protocol={"num_pairs": len(scores)}, arrays=arrays)


@register("psnr")
class PSNR(_PairedImageMetric):
    """Mean PSNR in dB over output / ground-truth pairs (inf for identical pairs, see the module docstring)."""

    description = "peak signal-to-noise ratio to the paired ground truth in dB (higher is better)"

    def _score(self, a, b):
        import tensorflow as tf

        return tf.image.psnr(a, b, max_val=1.0)

    def protocol(self) -> dict:
        return {"scale": SCALE, "implementation": "tf.image.psnr, per image, then the mean over images",
                "identical_pairs": "infinite PSNR, not capped"}

    def _result(self) -> MetricResult:
        scores = self._scores()
        if not len(scores):
            return self._unfed()
        finite = scores[np.isfinite(scores)]
        identical = int(np.sum(np.isposinf(scores)))
        values = {"psnr": float(scores.mean()), "identical_pairs": identical,
                  "psnr_excluding_identical": float(finite.mean()) if len(finite) else float("nan"),
                  "psnr_std_excluding_identical": float(finite.std()) if len(finite) else float("nan"),
                  "count": len(scores)}
        arrays = {"per_image": scores} if self.keep_per_image else {}
        return MetricResult(self.name, True, values=values, protocol={"num_pairs": len(scores)}, arrays=arrays)
