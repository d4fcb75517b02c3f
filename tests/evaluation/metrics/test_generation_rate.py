"""Generation rate: known predictions give known accuracies and confusion counts, over batches; the project's
AttributeClassifier (a dict of heads) plugs in; one-hot targets; errors; the confusion-matrix figure."""

import json

import numpy as np
import pytest
from PIL import Image

from legan_tf.evaluation import metrics
from legan_tf.evaluation.metrics import MetricResult
from legan_tf.evaluation.metrics.generation_rate import confusion_matrix, plot_confusion_matrices
from legan_tf.models.classifier import AttributeClassifier
from tests.evaluation.metrics.conftest import images

EXPRESSIONS = ["neutral", "smile", "surprise"]


def coded(classes):
    """Faces whose class is written in their first pixel's red value: (c + 0.5) / 10 - 0.5."""
    batch = np.zeros((len(classes), 4, 4, 3), np.float32)
    batch[:, 0, 0, 0] = (np.asarray(classes) + 0.5) / 10 - 0.5
    return batch


def reader(classes=3):
    """A stand-in classifier that reads the class off the first pixel: logits one-hot on it."""
    def classify(batch):
        ids = np.floor((batch[:, 0, 0, 0] + 0.5) * 10).astype(int)
        return np.eye(classes)[ids]
    return classify


def test_known_predictions():
    predicted = np.array([0, 0, 1, 2, 1, 1, 2, 0])
    targets = np.array([0, 1, 1, 2, 2, 1, 2, 0])
    metric = metrics.get("generation_rate")(classifier=reader(), class_names=EXPRESSIONS, batch_size=3)
    metric.update(outputs=coded(predicted[:5]), target_labels=targets[:5])
    metric.update(outputs=coded(predicted[5:]), target_labels=np.eye(3)[targets[5:]])  # one-hot rows work too
    result = metric.result()
    np.testing.assert_array_equal(result.arrays["confusion/label"], [[2, 0, 0], [1, 2, 0], [0, 1, 2]])
    assert result.values["accuracy/label"] == 6 / 8
    assert result.values["accuracy/label/neutral"] == 1.0
    assert result.values["accuracy/label/smile"] == 2 / 3 and result.values["accuracy/label/surprise"] == 2 / 3
    assert result.values["balanced_accuracy/label"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3, abs=1e-15)
    assert result.values["count/label"] == 8
    assert result.protocol["class_names"] == {"label": EXPRESSIONS}


def test_compute_takes_plain_lists_of_labels():
    result = metrics.get("generation_rate")(classifier=reader(), batch_size=2).compute(
        outputs=coded([0, 1, 2]), target_labels={"expression": [0, 1, 1]})
    assert result.values["accuracy/expression"] == 2 / 3


def test_confusion_matrix_rows_are_targets():
    np.testing.assert_array_equal(confusion_matrix([0, 0, 1], [1, 1, 1], 2), [[0, 2], [0, 1]])


def test_the_project_classifier_and_its_dict_of_heads():
    classifier = AttributeClassifier(image_size=8, head_classes={"expression": 3, "lighting": 4}, base_filters=4,
                                     num_downsamples=2)
    batch = images(6, size=16, seed=0)  # resized to the classifier's 8 px
    logits = classifier(metrics.base.resize_images(batch, 8))
    targets = {"expression": np.array([0, 1, 2, 0, 1, 2]), "lighting": np.array([0, 1, 2, 3, 0, 1])}
    result = metrics.get("generation_rate")(classifier=classifier,
                                            class_names={"expression": EXPRESSIONS}).compute(
        outputs=batch, target_labels=targets)
    for attribute, labels in targets.items():
        predicted = np.argmax(logits[attribute], axis=1)
        np.testing.assert_array_equal(result.arrays[f"confusion/{attribute}"],
                                      confusion_matrix(labels, predicted, logits[attribute].shape[1]))
    assert result.protocol["class_names"]["lighting"] == ["0", "1", "2", "3"]
    assert result.protocol["model_input_resize"]["to"] == [8, 8]
    only_expression = metrics.get("generation_rate")(classifier=classifier).compute(
        outputs=batch, target_labels={"expression": targets["expression"]})
    assert list(only_expression.arrays) == ["confusion/expression"]


def test_mistakes_in_the_call_are_errors_and_no_classifier_is_unavailable():
    two_heads = lambda batch: {"a": np.zeros((len(batch), 2)), "b": np.zeros((len(batch), 2))}  # noqa: E731
    with pytest.raises(ValueError, match="give target_labels as a dict"):
        metrics.get("generation_rate")(classifier=two_heads).update(outputs=coded([0]), target_labels=[0])
    with pytest.raises(ValueError, match="no classifier head"):
        metrics.get("generation_rate")(classifier=two_heads).update(outputs=coded([0]), target_labels={"c": [0]})
    with pytest.raises(ValueError, match="outside 0..2"):
        metrics.get("generation_rate")(classifier=reader()).update(outputs=coded([0]), target_labels=[3])
    with pytest.raises(ValueError, match="2 class names"):
        metrics.get("generation_rate")(classifier=reader(), class_names=["a", "b"]).update(
            outputs=coded([0]), target_labels=[0])
    result = metrics.get("generation_rate")().compute(outputs=coded([0]), target_labels=[0])
    assert not result.available and "no classifier given" in result.reason


def test_confusion_figure_is_readable(tmp_path):
    rng = np.random.default_rng(1)
    targets = {"expression": rng.integers(0, 3, 60), "lighting": rng.integers(0, 20, 60)}
    def classify(batch):
        return {"expression": np.eye(3)[targets["expression"][:len(batch)]],
                "lighting": np.eye(20)[rng.integers(0, 20, len(batch))]}
    result = metrics.get("generation_rate")(classifier=classify, class_names={"expression": EXPRESSIONS},
                                            batch_size=64).compute(outputs=coded(np.zeros(60, int)),
                                                                   target_labels=targets)
    stored = MetricResult.from_json(json.loads(json.dumps(result.to_json())))  # a report redraws from its JSON
    path = plot_confusion_matrices(stored, str(tmp_path / "confusion.png"))
    with Image.open(path) as picture:
        width, height = picture.size
    # 0.6 in per cell at 100 dpi: 60 px per cell of the 20-class matrix, room for two lines of 9 pt text.
    assert width >= 20 * 60 and height >= 20 * 60
