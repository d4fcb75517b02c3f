"""What a classifier's input gradient draws: faces pushed toward a target class by gradient descent.

A generator trained against a frozen classifier (`lambda_cls_frozen` of the GANs) learns whatever
lowers that classifier's loss on its edits. This shows, before any GAN is trained, what that is:
each face is moved within an L2 ball of radius `epsilon` (images in [-1, 1]) toward each target
class by projected gradient descent on the classifier's cross-entropy (`legan_tf.adversarial.pgd_l2`
on the negated loss). An ordinary classifier is satisfied by faint noise that changes nothing a
person reads; a robust one (`--classifier_adversarial_epsilon`) by changes of the face itself.
"""

from __future__ import annotations

import os

import numpy as np
from keras import ops
from PIL import Image

from legan_tf import adversarial, visualize
from legan_tf.data.manifests import IMAGE_EXTENSIONS as MANIFEST_EXTENSIONS
from legan_tf.errors import ConfigError
from legan_tf.losses import classification_loss

IMAGE_EXTENSIONS = MANIFEST_EXTENSIONS + (".bmp", ".webp")


def read_faces(folder: str, size: int, limit: int = 0) -> tuple[list[str], np.ndarray]:
    """The images of `folder` (sorted by name; the first `limit`, 0 for all) as [N, size, size, 3] in [-1, 1]:
    grey, repeated on three channels, resized (bicubic). Faces are taken as they are: align them first."""
    if not os.path.isdir(folder):
        raise ConfigError(f"--faces={folder}: no such folder.")
    names = sorted(name for name in os.listdir(folder) if name.lower().endswith(IMAGE_EXTENSIONS))
    names = names[:limit] if limit else names
    if not names:
        raise ConfigError(f"--faces={folder}: no images ({', '.join(IMAGE_EXTENSIONS)}).")
    faces = []
    for name in names:
        try:
            with Image.open(os.path.join(folder, name)) as image:
                grey = image.convert("L").resize((size, size), Image.BICUBIC)
        except OSError as error:
            raise ConfigError(f"--faces: {name} is not a readable image ({error}).") from None
        faces.append(np.repeat(np.asarray(grey, np.float32)[..., None], 3, axis=-1) / 127.5 - 1.0)
    return names, np.stack(faces)


def steer(classifier, faces, head: str, target: int, epsilon: float, steps: int) -> np.ndarray:
    """`faces` moved within L2 distance `epsilon` toward class `target` of `head` (lowest cross-entropy)."""
    targets = np.full(len(faces), target, np.int32)

    def negated_loss(images):
        return -ops.sum(classification_loss(classifier(images, training=False)[head], targets))

    return ops.convert_to_numpy(adversarial.pgd_l2(negated_loss, faces, epsilon, steps))


def steering_figure(classifiers: dict, faces: np.ndarray, head: str, class_names, targets, epsilon: float,
                    steps: int) -> tuple[np.ndarray, dict]:
    """A mosaic (a row per face and classifier; columns: the face, then each target) and, per classifier
    and target, the share of steered faces the classifier itself reads as the target."""
    rows, labels, rates = [], [], {}
    for label, classifier in classifiers.items():
        columns = [faces]
        for target in targets:
            index = class_names.index(target)
            steered = steer(classifier, faces, head, index, epsilon, steps)
            read = np.argmax(ops.convert_to_numpy(classifier(steered, training=False)[head]), axis=-1)
            rates[(label, target)] = float(np.mean(read == index))
            columns.append(steered)
        rows.append(columns)
        labels += [label] * len(faces)
    columns = [visualize.to_uint8(np.concatenate([row[index] for row in rows])) for index in range(len(targets) + 1)]
    mosaic = visualize.row_labelled_mosaic(columns, ["face"] + [f"-> {target}" for target in targets], labels)
    return mosaic, rates
