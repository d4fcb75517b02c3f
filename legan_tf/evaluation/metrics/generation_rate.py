"""Generation rate (both papers): does an independent classifier see the requested class on the outputs?

An attribute classifier trained on real faces (never a discriminator of the model under test) is run
on the outputs and compared with the target labels: overall accuracy, accuracy per target class,
the mean of those (balanced accuracy, the one to read when the targets are not uniform), and the
confusion matrix (rows: target class, columns: predicted class), accumulated batch by batch.
`plot_confusion_matrices` draws it with class names.

The classifier returns logits (B, C) for one attribute, or a dict attribute -> logits (B, C_a), as
`legan_tf.models.classifier.AttributeClassifier` does; the targets are (B,) class ids or (B, C)
one-hot rows, or a dict attribute -> such an array. Every attribute named in the targets is scored.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np

from legan_tf.evaluation.metrics.base import (Metric, MetricResult, as_images, call_in_batches, call_model,
                                              fit_to_model, register)

SINGLE = "label"  # the attribute's name when neither the classifier nor the targets name it


def _class_ids(labels, classes: int, attribute: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2:
        if labels.shape[1] != classes:
            raise ValueError(f"generation_rate: one-hot targets of {attribute} have {labels.shape[1]} columns, the "
                             f"classifier {classes} classes")
        labels = labels.argmax(axis=1)
    labels = labels.reshape(-1)
    if labels.size and (not np.issubdtype(labels.dtype, np.integer) and not np.all(labels == np.round(labels))):
        raise ValueError(f"generation_rate: targets of {attribute} are not class ids")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"generation_rate: targets of {attribute} outside 0..{classes - 1}: "
                         f"[{labels.min()}, {labels.max()}]")
    return labels


def confusion_matrix(targets, predictions, classes: int) -> np.ndarray:
    """(classes, classes) counts: rows the target class, columns the predicted class."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (np.asarray(targets, np.int64), np.asarray(predictions, np.int64)), 1)
    return matrix


@register("generation_rate")
class GenerationRate(Metric):
    """Accuracy of an independent classifier on the outputs against the target labels, per attribute and class.

    Args:
        classifier: a callable images in [-1, 1] -> logits (B, C) or {attribute: logits}; a project network
            declaring `image_size` gets images resized to it (recorded). None: unavailable.
        class_names: {attribute: [names]} (or a list for a single attribute); default "0", "1", ...
        classifier_source: where the classifier came from, for the protocol.
    """

    description = "accuracy of an independent classifier on the outputs against the target labels"
    needs = frozenset({"outputs", "target_labels"})
    requires = ("classifier",)
    paired = True

    def __init__(self, classifier=None, class_names: Union[Mapping[str, Sequence[str]], Sequence[str], None] = None,
                 classifier_source: str = "", batch_size: int = 64, context=None):
        self.classifier = classifier
        self.classifier_source = classifier_source
        self.class_names = class_names
        if classifier is None:
            self.unavailable_reason = ("no classifier given: the generation rate needs an attribute classifier "
                                       "trained on real faces, independent of the model under test")
        self._resize = {}
        super().__init__(batch_size=batch_size, context=context)

    def reset(self) -> None:
        self.confusion: Dict[str, np.ndarray] = {}

    def _names(self, attribute: str, classes: int):
        names = self.class_names
        if isinstance(names, Mapping):
            names = names.get(attribute)
        if names is None:
            return [str(index) for index in range(classes)]
        names = [str(name) for name in names]
        if len(names) != classes:
            raise ValueError(f"generation_rate: {len(names)} class names for {attribute}, the classifier has "
                             f"{classes} classes")
        return names

    def protocol(self) -> dict:
        return {"classifier": self.classifier_source or type(self.classifier).__name__,
                "prediction": "argmax of the classifier's logits",
                "confusion_matrix": "rows: target class, columns: predicted class",
                "class_names": {attribute: self._names(attribute, len(matrix))
                                for attribute, matrix in self.confusion.items()},
                **self._resize}

    def _update(self, batch) -> None:
        images = fit_to_model(as_images(batch["outputs"], "outputs"), self.classifier, self._resize)
        logits = call_in_batches(lambda part: call_model(self.classifier, part), images, self.batch_size)
        targets = batch["target_labels"]
        if not isinstance(logits, Mapping):
            name = next(iter(targets)) if isinstance(targets, Mapping) and len(targets) == 1 else SINGLE
            logits = {name: logits}
        if not isinstance(targets, Mapping):
            if len(logits) != 1:
                raise ValueError(f"generation_rate: the classifier has heads {sorted(logits)}; give target_labels "
                                 "as a dict attribute -> labels")
            targets = {next(iter(logits)): targets}
        missing = sorted(set(targets) - set(logits))
        if missing:
            raise ValueError(f"generation_rate: no classifier head for {missing} (heads: {sorted(logits)})")
        for attribute, labels in targets.items():
            scores = np.asarray(logits[attribute])
            classes = scores.shape[1]
            ids = _class_ids(labels, classes, attribute)
            if len(ids) != len(scores):
                raise ValueError(f"generation_rate: {len(ids)} targets of {attribute} for {len(scores)} outputs")
            matrix = confusion_matrix(ids, scores.argmax(axis=1), classes)
            if attribute in self.confusion:
                if self.confusion[attribute].shape != matrix.shape:
                    raise ValueError(f"generation_rate: {attribute} changed from {len(self.confusion[attribute])} "
                                     f"to {classes} classes")
                self.confusion[attribute] += matrix
            else:
                self._names(attribute, classes)  # checks the names early
                self.confusion[attribute] = matrix

    def _result(self) -> MetricResult:
        if not self.confusion:
            return MetricResult.unavailable(self.name, "no outputs with target labels were given")
        values, arrays, notes = {}, {}, []
        for attribute, matrix in self.confusion.items():
            names = self._names(attribute, len(matrix))
            support = matrix.sum(axis=1)
            total = int(support.sum())
            values[f"accuracy/{attribute}"] = float(np.trace(matrix) / total)
            per_class = []
            for index, name in enumerate(names):
                if support[index]:
                    rate = float(matrix[index, index] / support[index])
                    values[f"accuracy/{attribute}/{name}"] = rate
                    per_class.append(rate)
            values[f"balanced_accuracy/{attribute}"] = float(np.mean(per_class))
            values[f"count/{attribute}"] = total
            absent = [name for name, count in zip(names, support) if not count]
            if absent:
                notes.append(f"{attribute}: no outputs targeted {', '.join(absent)}; those classes have no accuracy")
            arrays[f"confusion/{attribute}"] = matrix
        return MetricResult(self.name, True, values=values, arrays=arrays, notes=notes)


def plot_confusion_matrices(result: MetricResult, path: str, title: Optional[str] = None) -> str:
    """Writes a PNG of a `generation_rate` result's confusion matrices, one panel per attribute: cells show
    the share of each target class's outputs given each prediction (colour and %) and the count. Returns `path`."""
    from legan_tf import visualize  # noqa: F401  (selects matplotlib's Agg backend)
    import matplotlib.pyplot as plt

    if not result.available:
        raise ValueError(f"plot_confusion_matrices: the result is unavailable ({result.reason})")
    attributes = [key.split("/", 1)[1] for key in result.arrays if key.startswith("confusion/")]
    sizes = [len(result.arrays[f"confusion/{attribute}"]) for attribute in attributes]
    # ~0.6 inch per cell keeps two lines of 9 pt text inside it; the margin takes the class names.
    widths = [max(3.5, 0.6 * size + 2.0) for size in sizes]
    figure, axes = plt.subplots(1, len(attributes), figsize=(sum(widths), max(widths) + 0.6), dpi=100,
                                squeeze=False, gridspec_kw={"width_ratios": widths})
    names_by_attribute = result.protocol.get("class_names", {})
    for axis, attribute in zip(axes[0], attributes):
        matrix = np.asarray(result.arrays[f"confusion/{attribute}"], np.int64)
        names = names_by_attribute.get(attribute) or [str(index) for index in range(len(matrix))]
        support = matrix.sum(axis=1, keepdims=True)
        rates = np.divide(matrix, support, out=np.zeros(matrix.shape, np.float64), where=support > 0)
        axis.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
        for row in range(len(matrix)):
            for column in range(len(matrix)):
                if not matrix[row, column]:
                    continue
                colour = "white" if rates[row, column] > 0.55 else "black"
                axis.text(column, row, f"{100 * rates[row, column]:.0f}%\n{matrix[row, column]}", ha="center",
                          va="center", fontsize=9, color=colour)
        axis.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=10)
        axis.set_yticks(range(len(names)), names, fontsize=10)
        axis.set_xlabel("predicted by the classifier", fontsize=10)
        axis.set_ylabel("target", fontsize=10)
        accuracy = result.values.get(f"accuracy/{attribute}", float("nan"))
        axis.set_title(f"{attribute}: generation rate {100 * accuracy:.1f}% (n = {int(support.sum())})", fontsize=11)
    figure.suptitle(title or "Generation rate: the classifier's reading of the outputs, per target class", fontsize=12)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
