"""Adversarial examples for adversarial training (Madry et al., ICLR 2018), L2 projected gradient ascent.

A classifier trained on the worst faces within a small L2 ball around each training face is robust,
and the gradient of a robust classifier's loss with respect to its input points at changes a person
also reads as the class (Santurkar et al., NeurIPS 2019; Tsipras et al., ICLR 2019), where an
ordinary classifier's points at faint high-frequency patterns. That is why it is here: a generator
trained against a frozen classifier (`lambda_cls_frozen` of the GANs) learns whatever raises the
classifier's score, and against an ordinary one that is stripes.

The attack starts at the clean image (no random start: deterministic, so a resumed run and a
mirrored one repeat it), takes `steps` steps of size 2.5 * epsilon / steps along the L2-normalised
gradient of the loss, projects back onto the ball of radius `epsilon` (the L2 norm of the change over
all pixels and channels, images in [-1, 1]) and clips to [-1, 1] after each step.
"""

from __future__ import annotations

from keras import ops

from legan_tf import backend
from legan_tf.losses import per_example_norm

STEP_RATIO = 2.5  # step size = STEP_RATIO * epsilon / steps (Madry et al.'s choice)


def _per_example_norm(values):
    """(B, 1, 1, 1) L2 norms over every non-batch axis, to scale images by."""
    return ops.reshape(per_example_norm(values), (-1, 1, 1, 1))


def project(change, epsilon):
    """`change` scaled down, per example, onto the L2 ball of radius `epsilon` (unchanged inside it)."""
    norm = _per_example_norm(change)
    return change * ops.minimum(1.0, epsilon / norm)


def pgd_l2(loss_fn, images, epsilon: float, steps: int):
    """Images within L2 distance `epsilon` of `images` ((B, H, W, C) in [-1, 1]) that raise `loss_fn`.

    `loss_fn(images)` returns per-example (or summed) losses; each example's change follows only its
    own loss when examples are independent in the model. The result carries no gradient back to
    `images` or the model: it is data for the training step.
    """
    clean = ops.cast(images, "float32")
    if epsilon <= 0 or steps <= 0:
        return clean
    step_size = STEP_RATIO * epsilon / steps
    adversarial = clean
    for _ in range(steps):
        gradient = ops.stop_gradient(backend.input_gradient(loss_fn, adversarial))
        adversarial = adversarial + step_size * gradient / _per_example_norm(gradient)
        adversarial = ops.clip(clean + project(adversarial - clean, epsilon), -1.0, 1.0)
    return ops.stop_gradient(adversarial)
