"""Loss functions: small pure functions of tensors. They know nothing about networks or data.

Written once in `keras.ops`, so the TensorFlow and the JAX backend compute the same losses; the
one backend-specific step, the gradient penalty's inner gradient, is `legan_tf.backend.input_gradient`.
"""

import keras
from keras import ops

from legan_tf import backend


def _float32(values):
    return ops.cast(values, "float32")


def _flat(values):
    return ops.reshape(_float32(values), [-1])


def margin_loss(predicted, mean, std, squared=False):
    """LEGAN's margin-based regression loss for Q, per example.

    No penalty while the prediction lies inside the raters' band mean +- std; outside it, the
    distance to the band (L1), or its square with `squared=True` (the squared-hinge variant). With
    std = 0 it is plain L1 (or L2) to the mean. Shapes broadcast; (batch, 1) predictions are
    flattened to (batch,).
    """
    outside = ops.relu(ops.abs(_flat(predicted) - _flat(mean)) - _flat(std))
    return ops.square(outside) if squared else outside


# GAN losses (StarGAN / LEGAN / Bodur et al.). Each returns one value per example, shape (batch,),
# so a trainer reduces by a sum over the global batch divided by its size; the mean of these
# over a batch is what the reference (yunjey/stargan solver.py) computes.


def _per_example_mean(values):
    """Mean over every axis but the first: (B, ...) -> (B,)."""
    values = _float32(values)
    return ops.mean(ops.reshape(values, [ops.shape(values)[0], -1]), axis=1)


def per_example_norm(values):
    """L2 norm over every axis but the first: (B, ...) -> (B,). A 1e-12 under the square root keeps its
    gradient finite where `values` vanish (the gradient penalty differentiates it; the L2 attack of
    legan_tf.adversarial divides by it)."""
    values = _float32(values)
    squared = ops.sum(ops.reshape(ops.square(values), [ops.shape(values)[0], -1]), axis=1)
    return ops.sqrt(squared + 1e-12)


def gradient_penalty(critic_fn, real, fake, alpha=None):
    """WGAN-GP penalty (norm - 1)^2 per example, at random points between real and fake images.

    x_hat = alpha * real + (1 - alpha) * fake with one alpha ~ U(0, 1) per example (shape (B, 1, 1, 1)
    for images; pass `alpha` to fix it). The gradient of sum(critic_fn(x_hat)) over every output
    (the reference's grad_outputs=ones over the patch map) is taken w.r.t. x_hat; its L2 norm over
    all non-batch axes gives the penalty. Examples are independent in the critic (no batch
    statistics), so the gradient of the batch sum is each example's own gradient.

    `critic_fn` maps images to scores, e.g. `lambda x: discriminator(x)[0]`. Call this inside the
    discriminator's loss: the inner gradient is itself differentiated (a nested tape, or jax.grad
    inside jax.grad), so the penalty is differentiable w.r.t. the critic's weights. A 1e-12 under the square root keeps that second-order gradient
    finite where the input gradient vanishes (the reference takes the bare sqrt).
    """
    real = ops.convert_to_tensor(real)
    fake = ops.cast(fake, real.dtype)
    batch = ops.shape(real)[0]
    alpha_shape = [batch] + [1] * (len(real.shape) - 1)
    if alpha is None:  # eager use only: the trainer passes a draw of a named stream
        alpha = keras.random.uniform(alpha_shape, 0.0, 1.0, dtype=real.dtype)
    else:
        alpha = ops.reshape(ops.cast(alpha, real.dtype), alpha_shape)
    interpolated = alpha * real + (1.0 - alpha) * fake
    gradients = backend.input_gradient(critic_fn, interpolated)
    return ops.square(per_example_norm(gradients) - 1.0)


def wasserstein_critic_loss(real_scores, fake_scores):
    """Critic's WGAN loss per example: -mean(D(real)) + mean(D(fake)), means over the patch map."""
    return -_per_example_mean(real_scores) + _per_example_mean(fake_scores)


def wasserstein_generator_loss(fake_scores):
    """Generator's WGAN loss per example: -mean(D(fake)) over the patch map."""
    return -_per_example_mean(fake_scores)


def classification_loss(logits, labels, multi_label=False):
    """Attribute classification loss per example, from logits (B, C).

    Single-label (`multi_label=False`, the reference's RaFD setting, F.cross_entropy): softmax
    cross-entropy; labels are class ids (B,) or one-hot / soft rows (B, C). Multi-label (the
    reference's CelebA setting, BCE-with-logits summed over labels, divided by the batch): sigmoid
    binary cross-entropy summed over the C labels; labels (B, C) in {0, 1}.
    """
    logits = _float32(logits)
    if multi_label:
        return ops.sum(ops.binary_crossentropy(_float32(labels), logits, from_logits=True), axis=-1)
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) == len(logits.shape):
        return ops.categorical_crossentropy(_float32(labels), logits, from_logits=True)
    return ops.sparse_categorical_crossentropy(ops.cast(labels, "int32"), logits, from_logits=True)


def cycle_loss(original, reconstructed):
    """Cycle reconstruction L1 per example: mean |x - G(G(x, c_trg), c_org)| over pixels and channels."""
    return _per_example_mean(ops.abs(_float32(original) - _float32(reconstructed)))


def mask_size(mask):
    """An attention mask's size per example: its mean over pixels (GANimation's mask loss, as a mean).

    Penalising it copies the input wherever the edit does not need new pixels."""
    return _per_example_mean(mask)


def total_variation(images):
    """Mean absolute difference of vertically plus horizontally neighbouring pixels, per example (B, H, W, C)."""
    images = _float32(images)
    vertical = _per_example_mean(ops.abs(images[:, 1:] - images[:, :-1]))
    horizontal = _per_example_mean(ops.abs(images[:, :, 1:] - images[:, :, :-1]))
    return vertical + horizontal


def quality_loss(scores, q_target=10.0):
    """LEGAN's quality loss per example: relu(q_target - Q(x)) / q_target (Banerjee et al. 2021).

    Scores (B,) or (B, 1) from the frozen quality model Q; zero once Q(x) reaches q_target.
    """
    return ops.relu(q_target - _flat(scores)) / q_target


def identity_loss(emb_a, emb_b):
    """Identity loss per example: 1 - cos(emb_a, emb_b), embeddings flattened beyond the batch axis."""
    emb_a, emb_b = l2_normalize(_rows(emb_a)), l2_normalize(_rows(emb_b))
    return 1.0 - ops.sum(emb_a * emb_b, axis=1)


def _rows(values):
    values = _float32(values)
    return ops.reshape(values, [ops.shape(values)[0], -1])


def l2_normalize(values, axis=-1, epsilon=1e-12):
    """values / max(||values||, sqrt(epsilon)) along `axis` (tf.math.l2_normalize's definition)."""
    squared = ops.sum(ops.square(values), axis=axis, keepdims=True)
    return values * ops.rsqrt(ops.maximum(squared, epsilon))


# Bodur et al.'s depth network (WACV 2021, eq. 9-11).


def l1_loss(target, predicted):
    """Pixel L1 per example (eq. 9): mean |target - predicted| over pixels and channels."""
    return _per_example_mean(ops.abs(_float32(target) - _float32(predicted)))


def change_weighted_l1_loss(target, predicted, source, focus=0.0):
    """Pixel L1 per example weighted toward where `target` differs from `source`: each pixel's weight is
    1 + focus * d / mean(d), d = |target - source| averaged over channels (no gradient: both are data), and
    the weighted sum is divided by the weights' sum. focus=0 is `l1_loss`; a pixel the target leaves alone
    counts 1, one it changes by k times the face's mean change counts 1 + focus * k."""
    if not focus:
        return l1_loss(target, predicted)
    change = ops.mean(ops.abs(_float32(target) - _float32(source)), axis=-1, keepdims=True)
    scale = ops.mean(change, axis=(1, 2, 3), keepdims=True)
    weight = ops.stop_gradient(1.0 + focus * change / ops.maximum(scale, 1e-6))
    # One weight per pixel, shared by its channels: its mean over the pixels is the weights' mean.
    return _per_example_mean(weight * ops.abs(_float32(target) - _float32(predicted))) / _per_example_mean(weight)


def perceptual_loss(target_features, predicted_features):
    """Perceptual loss per example (eq. 10): mean over layers of the mean |V_l(target) - V_l(predicted)|.

    Features are lists of (B, ...) maps from one feature network (VGG19 in the paper). Each layer's
    L1 is averaged over its own elements, so wide early layers do not outweigh deep ones.
    """
    target_features, predicted_features = list(target_features), list(predicted_features)
    if not target_features or len(target_features) != len(predicted_features):
        raise ValueError(f"perceptual_loss: need equally many feature maps, got {len(target_features)} and "
                         f"{len(predicted_features)}")
    per_layer = [l1_loss(a, b) for a, b in zip(target_features, predicted_features)]
    return sum(per_layer[1:], per_layer[0]) / float(len(per_layer))


def entropy(logits):
    """Entropy H(softmax(logits)) in nats per example, from logits (B, C); 0 for a one-hot, log C for uniform."""
    log_probabilities = ops.log_softmax(_float32(logits), axis=-1)
    return -ops.sum(ops.exp(log_probabilities) * log_probabilities, axis=-1)


def confidence_penalty(logits, beta):
    """The confidence penalty per example (eq. 11, Pereyra et al. 2017): -beta * H(softmax(logits)).

    Added to a classifier's cross-entropy, it rewards spread-out predictions, so a classifier of
    noisy labels (depth maps fitted by a 3D model) does not grow overconfident.
    """
    return -float(beta) * entropy(logits)
