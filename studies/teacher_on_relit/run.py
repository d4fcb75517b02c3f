#!/usr/bin/env python
"""An expression-only generator (the shipped StarGAN, say) through the relit faces' joint check.

    .venv/bin/python studies/teacher_on_relit/run.py --model=pretrained:stargan-fer2013-64 \\
        --data_path=data/fer2013_relit_tfr --num_faces=1000 --seed=0 \\
        --expression_judge=runs/classifier-fer2013/attribute_classifier.keras \\
        --lighting_judge=runs/classifier-fer2013-relit/attribute_classifier.keras --other_judges=mini_xception \\
        --identity_model=runs/identity-ckplus-relit-split1/identity_model.keras \\
        --normals_dir=data/fer2013_privtest_d --inception_weights=weights/fid_inception_2015.npz \\
        --output_dir=runs/judge-stargan-fer2013-64-relit

`scripts/judge_joint_edits.py` judges a generator that takes expression and lighting labels. This study
wraps an expression-only generator so that it takes both (the lighting part of the label vector is ignored:
a lighting-only edit is the generator's edit of the face to its own expression) and runs the same check
(`legan_tf.evaluation.joint_edits.evaluate_joint_edits`) on the same faces. Its expression figures (read as
the target, the person kept, KID of the expression-only edits) are the generator's, measured as LEGAN's are;
its lighting figures say only what a generator that does not relight scores. Used for the shipped StarGAN's
figures beside LEGAN's in docs/legan.md.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


class ExpressionOnly:
    """Calls `generator` with the expression part of an (expression + lighting) label vector, moved to the
    generator's own expression order (`order[i]`: the generator's slot for the data's expression i)."""

    def __init__(self, generator, order, num_lightings):
        self.generator, self.order = generator, np.asarray(order)
        self.image_size = generator.image_size
        self.num_labels = len(order) + num_lightings

    def __call__(self, inputs, training=False):
        images, labels = inputs
        expression = np.asarray(labels)[:, :len(self.order)]
        theirs = np.zeros((len(expression), self.generator.num_labels), np.float32)
        theirs[:, self.order] = expression
        return self.generator((images, theirs), training=training)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="An expression-only generator: pretrained:<name>.")
    parser.add_argument("--data_path", required=True, help="Relit faces' shards (as judge_joint_edits.py).")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--expression_judge", required=True)
    parser.add_argument("--lighting_judge", required=True)
    parser.add_argument("--other_judges", default="")
    parser.add_argument("--identity_model")
    parser.add_argument("--normals_dir")
    parser.add_argument("--inception_weights")
    parser.add_argument("--num_faces", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from legan_tf import pretrained
    from legan_tf.data.errors import DataError
    from legan_tf.errors import ConfigError
    from legan_tf.evaluation import joint_edits, run_under_test

    try:
        judge(args, pretrained, joint_edits, run_under_test)
    except (ConfigError, DataError, OSError) as error:
        sys.exit(f"error: {error}")


def judge(args, pretrained, joint_edits, run_under_test):
    from legan_tf.errors import ConfigError

    if not pretrained.is_pretrained(args.model):
        raise ConfigError(f"--model={args.model}: give a shipped model, pretrained:<name>")
    name = args.model.removeprefix(pretrained.PREFIX)
    generator, theirs = pretrained.load(name), pretrained.label_names(name)["expression"]
    with open(os.path.join(args.data_path, "dataset.json"), encoding="utf-8") as handle:
        data_labels = json.load(handle)["label_names"]
    missing = [label for label in data_labels["expression"] if label not in theirs]
    if missing:
        sys.exit(f"error: {args.model} does not edit to {', '.join(missing)}")
    wrapped = ExpressionOnly(generator, [theirs.index(label) for label in data_labels["expression"]],
                             len(data_labels["lighting"]))

    def resolve_run(run_dir=None, generator_path=None, **kwargs):
        # No labels.json beside this path, so the check reads the data's labels (expression, then lighting).
        return run_under_test.RunUnderTest(args.model, None, os.path.join(args.output_dir, "wrapped"), wrapped,
                                           {}, {}, "legan")

    joint_edits.resolve_run = resolve_run
    result = joint_edits.evaluate_joint_edits(
        args.expression_judge, args.lighting_judge, generator_path=args.model, data_path=args.data_path,
        num_faces=args.num_faces, output_dir=args.output_dir, seed=args.seed, progress=False,
        command=" ".join(sys.argv), other_judges=[item for item in args.other_judges.split(",") if item],
        identity_model=args.identity_model, normals_dir=args.normals_dir, inception_weights=args.inception_weights)
    print("\n".join(joint_edits.main_lines(result)))


if __name__ == "__main__":
    main()
