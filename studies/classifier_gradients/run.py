#!/usr/bin/env python
"""Shows what a classifier's gradient draws on faces: each face pushed toward each target class.

  python studies/classifier_gradients/run.py --faces=aligned/ --targets=happy,sad,surprise,angry \\
      --classifiers=runs/classifier-fer2013/attribute_classifier.keras,runs/robust/attribute_classifier.keras \\
      --epsilon=8 --output=steered.png

Before a classifier becomes a generator's reward (--legan_lambda_cls_frozen), this shows what the
generator would be paid for: the faces of --faces (aligned crops, e.g. scripts/align_faces.py's output)
moved within L2 distance --epsilon (images in [-1, 1]) toward each target by projected gradient descent
on the classifier's cross-entropy. Writes a mosaic (a row per face and classifier) and prints, per
classifier and target, how many of the moved faces the classifier itself reads as the target.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

# The repository root (two folders up), so that `studies` imports when this runs as a file.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

flags.DEFINE_string("faces", None, "Folder of face images (aligned crops; any size, read grey and resized).")
flags.DEFINE_list("classifiers", None, "Comma list of attribute_classifier.keras files, each with the labels.json "
                  "of its run beside it.")
flags.DEFINE_string("head", "expression", "The classifier head to steer.")
flags.DEFINE_list("targets", None, "Target class names (default: every class of the head).")
flags.DEFINE_float("epsilon", 8.0, "L2 radius of the change (images in [-1, 1]).", lower_bound=0.0)
flags.DEFINE_integer("steps", 20, "Projected gradient steps.", lower_bound=1)
flags.DEFINE_integer("max_faces", 8, "Use the first N faces of --faces (by name); 0 for all.", lower_bound=0)
flags.DEFINE_string("output", "steered_faces.png", "The mosaic (PNG).")
FLAGS = flags.FLAGS


def steer_faces():
    from legan_tf.errors import ConfigError
    from legan_tf.runs import load_attribute_classifier
    from legan_tf.visualize import save_png
    from studies.classifier_gradients import classifier_gradients

    if not FLAGS.faces or not FLAGS.classifiers:
        raise ConfigError("--faces and --classifiers are required (see --help).")
    classifiers, names = {}, None
    if len({os.path.abspath(path) for path in FLAGS.classifiers}) != len(FLAGS.classifiers):
        raise ConfigError(f"--classifiers names a file twice: {','.join(FLAGS.classifiers)}.")
    for path in FLAGS.classifiers:
        model, label_names = load_attribute_classifier(path, "--classifiers")
        head_names = label_names.get(FLAGS.head)
        if head_names is None or FLAGS.head not in model.head_classes:
            raise ConfigError(f"--classifiers={path}: no {FLAGS.head!r} head.")
        if names is not None and tuple(head_names) != tuple(names):
            raise ConfigError(f"--classifiers={path}: its {FLAGS.head} classes {list(head_names)} differ from "
                              f"the first classifier's {list(names)}.")
        names = tuple(head_names)
        # Rows are labelled by the run's folder; two files of one folder by their paths.
        label = os.path.basename(os.path.dirname(os.path.abspath(path)))
        if label in classifiers:
            label = os.path.normpath(path)
        classifiers[label] = model
    sizes = {model.image_size for model in classifiers.values()}
    if len(sizes) != 1:
        raise ConfigError(f"--classifiers: input sizes differ ({sorted(sizes)}); compare classifiers of one size.")
    targets = FLAGS.targets or list(names)
    unknown = [target for target in targets if target not in names]
    if unknown:
        raise ConfigError(f"--targets: {unknown[0]!r} is not one of the {FLAGS.head} classes ({', '.join(names)}).")
    _, faces = classifier_gradients.read_faces(FLAGS.faces, sizes.pop(), FLAGS.max_faces)
    mosaic, rates = classifier_gradients.steering_figure(classifiers, faces, FLAGS.head, names, targets,
                                                         FLAGS.epsilon, FLAGS.steps)
    save_png(mosaic, FLAGS.output)
    for (label, target), rate in rates.items():
        print(f"{label}: -> {target}: {rate:.0%} of {len(faces)} steered faces read as {target} by it")
    print(f"Wrote {FLAGS.output}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from legan_tf.cli import run_main

    run_main(steer_faces)


if __name__ == "__main__":
    app.run(main)
