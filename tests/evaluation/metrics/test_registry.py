"""The registry, the result record's JSON, and feeding: paired batches, unpaired sets, update_all, iterables."""

import json

import numpy as np
import pytest

from legan_tf.errors import ConfigError
from legan_tf.evaluation import metrics
from legan_tf.evaluation.metrics import MetricResult
from tests.evaluation.metrics.conftest import images

EXPECTED = {"fid", "kid", "ssim", "psnr", "lpips", "match_score", "quality_score", "generation_rate"}


def test_every_metric_is_registered_with_what_it_needs():
    assert set(metrics.names()) == EXPECTED
    for name in metrics.names():
        metric = metrics.get(name)
        assert metric.name == name and metric.description and metric.needs
        assert metric.needs <= {"outputs", "reals", "targets_paired", "inputs", "target_labels"}
    with pytest.raises(ConfigError, match="unknown metric 'is'; known: fid, generation_rate"):
        metrics.get("is")


def test_register_refuses_a_second_class_under_one_name():
    with pytest.raises(ValueError, match="registered twice"):
        metrics.register("fid")(type("Other", (metrics.Metric,), {}))


def test_result_json_round_trip_is_strict():
    result = MetricResult("psnr", True, values={"psnr": float("inf"), "count": np.int64(3)},
                          protocol={"sizes": (32, 32)}, arrays={"per_image": np.array([np.inf, 20.0, np.nan])},
                          notes=["n"])
    text = json.dumps(result.to_json(), allow_nan=False)
    back = MetricResult.from_json(json.loads(text))
    assert back.values == {"psnr": float("inf"), "count": 3} and back.protocol == {"sizes": [32, 32]}
    assert back.arrays["per_image"][:2] == [float("inf"), 20.0] and np.isnan(back.arrays["per_image"][2])
    unavailable = MetricResult.unavailable("lpips", "no weights").to_json()
    assert unavailable["available"] is False and unavailable["reason"] == "no weights"


def test_unknown_inputs_are_errors():
    with pytest.raises(ValueError, match="unknown input"):
        metrics.get("psnr")().update(outputs=images(1), reals=images(1))


def test_update_all_gives_each_metric_its_keys(mean_extractor):
    fid = metrics.get("fid")(extractor=mean_extractor)
    psnr = metrics.get("psnr")()
    quality = metrics.get("quality_score")(quality_model=lambda batch: batch.mean(axis=(1, 2, 3)))
    for seed in range(3):
        metrics.update_all([fid, psnr, quality], outputs=images(4, seed=seed), reals=images(4, seed=seed + 9))
    metrics.update_all([fid, psnr, quality], outputs=images(4, seed=5), targets_paired=images(4, seed=6))
    assert fid.result().protocol["num_outputs"] == 16 and fid.result().protocol["num_reals"] == 12
    assert psnr.result().values["count"] == 4  # paired: only the batch that had its truth
    assert quality.result().values["count_reals"] == 12


def test_compute_takes_iterables_of_batches_and_checks_paired_lengths():
    outputs, truth = images(7, size=12, seed=1), images(7, size=12, seed=2)
    from_arrays = metrics.get("psnr")(batch_size=3).compute(outputs=outputs, targets_paired=truth)
    from_batches = metrics.get("psnr")().compute(outputs=iter([outputs[:2], outputs[2:]]),
                                                targets_paired=[truth[:2], truth[2:]])
    np.testing.assert_allclose(from_batches.arrays["per_image"], from_arrays.arrays["per_image"], atol=1e-5)
    with pytest.raises(ValueError, match="ran out at different batches"):
        metrics.get("psnr")().compute(outputs=[outputs[:2], outputs[2:]], targets_paired=[truth[:2]])
    with pytest.raises(ValueError, match="differ in length"):
        metrics.get("psnr")().update(outputs=outputs, targets_paired=truth[:3])


def test_images_outside_minus_one_to_one_are_refused():
    with pytest.raises(ValueError, match=r"must be in \[-1, 1\]"):
        metrics.get("psnr")().update(outputs=images(1) * 127.5 + 127.5, targets_paired=images(1))
