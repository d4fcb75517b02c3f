"""The papers' evaluation metrics, one module per metric, found by name in a registry.

    from legan_tf.evaluation import metrics

    metrics.names()                       # ('fid', 'generation_rate', 'kid', 'lpips', 'match_score', 'psnr', ...)
    fid = metrics.get("fid")(weights="fid2015", context={"reference": "test split, target classes"})
    for batch in batches:                 # any number of batches, outputs and reals apart or together
        fid.update(outputs=batch_outputs, reals=batch_reals)
    result = fid.result()                 # a MetricResult; result.available False with result.reason if not
    json.dump(result.to_json(), file)

or `metrics.get("ssim")().compute(outputs=array, targets_paired=array)` in one call, or
`metrics.update_all([fid, kid, ssim, ...], outputs=..., reals=..., targets_paired=...)` to give each
metric the keys it takes. See `base.py` for the data keys and the result record.

| name | needs (update) | requires (constructor) | values |
|---|---|---|---|
| fid | outputs, reals | weights ("fid2015", a FID Inception .npz, "imagenet", a Keras .h5) or extractor | fid |
| kid | outputs, reals | weights or extractor | kid, kid_standard_error |
| ssim, psnr | outputs, targets_paired | - | ssim, ssim_std / psnr, psnr_excluding_identical, identical_pairs |
| lpips | outputs, targets_paired | weights (.npz) or network | lpips, lpips_std |
| match_score | inputs, outputs | identity_model | match_score, _std, _median |
| quality_score | outputs (reals optional) | quality_model | quality_outputs, quality_reals (and _std) |
| generation_rate | outputs, target_labels | classifier | accuracy/<a>, accuracy/<a>/<class>, balanced_accuracy/<a> |

Figures: `match_score.plot_match_scores`, `generation_rate.plot_confusion_matrices`.
"""

from legan_tf.evaluation.metrics.base import (Metric, MetricResult, get, iter_batches, names, register,  # noqa: F401
                                              update_all)

# Importing the metric modules registers them.
from legan_tf.evaluation.metrics import (fid, generation_rate, kid, lpips, match_score, paired,  # noqa: E402,F401
                                         quality_score)
from legan_tf.evaluation.metrics.fid import frechet_distance  # noqa: E402,F401
from legan_tf.evaluation.metrics.generation_rate import plot_confusion_matrices  # noqa: E402,F401
from legan_tf.evaluation.metrics.kid import kernel_inception_distance  # noqa: E402,F401
from legan_tf.evaluation.metrics.match_score import plot_match_scores  # noqa: E402,F401
