"""Every GAN's loss weights: each term weighted by its own hyperparameter, and each step minimising that sum.

Each model is built tiny with a distinct weight for every hyperparameter (distinct primes, and an exact
binary fraction for w_depth), so that weighting a term by another term's hyperparameter changes a
number the test compares. Two checks per model and side (D and G):

1. `discriminator_loss_weights()` / `generator_loss_weights()` name each term with its own hyperparameter
   (the expected tables below are written out from the papers' losses, not read from the code).
2. One step on a known batch, with an optimizer that records the gradient it is given instead of applying
   it: the step's per-term metrics equal the terms computed here from the same networks and draws, its
   reported total is sum(weight * term) of its per-term metrics, and the gradient it minimised is
   sum(weight * gradient of term). A control asserts that swapping the weights of any two terms moves
   that gradient beyond the bound, so a swap in the weights table or in the step fails the test.
"""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from legan_tf.gan import LEGAN, DepthGuidedStarGAN, DepthNetworkGAN, StarGAN
from legan_tf.gan.depth import make_depth_discriminator
from legan_tf.models.depth import DepthGenerator
from legan_tf.models.quality import QualityModel
from tests.tasks.mirrored import batches, gradient_recorder_class
from tests.tasks.test_depth_recipes import TinyFeatures
from tests.tasks.test_legan_recipe import _judges

U = 2.0 ** -24  # float32's unit roundoff
BATCH = 4
STEP = 1
# Relative bound on ||recorded gradient - sum_t w_t g_t|| / sum_t w_t ||g_t||. Both sides are the same float32
# ops on the same weights and draws; they differ only in the order of float32 sums: the step back-propagates the
# weighted sum through shared layers (adding the terms' upstream gradients before the weight-gradient sums), here
# each term is differentiated alone and the gradients are added after. Re-ordering a float32 sum of n terms moves
# it by at most (n - 1) * u * sum|terms|; the longest sums are weight gradients over batch x positions,
# n = 4 * 32 * 32 = 4096, so at most 2.4e-4 of the contributions' magnitude per layer, plus (T - 1) * u for
# adding T <= 8 terms. 1e-3 is above both.
GRADIENT_BOUND = 1e-3

TINY_RGB = dict(image_size=32, g_filters=4, g_residual_blocks=1, d_filters=4, global_batch_size=BATCH, n_critic=1)
TWO_ATTRIBUTES = {"expression": 3, "lighting": 4}
EXPRESSIONS = {"expression": 3}
STARGAN_HP = dict(lambda_cls=3.0, lambda_rec=5.0, lambda_gp=7.0, lambda_qual=11.0)
DEPTH_NETWORK_HP = dict(lambda_adv=2.0, lambda_cls=3.0, lambda_rec=5.0, lambda_gp=7.0, lambda_pix=11.0,
                        lambda_per=13.0, confidence_beta=0.1)
DEPTH_GUIDED_HP = dict(STARGAN_HP, depth_weight=0.5, lambda_depth_adv=13.0, lambda_depth_cls=17.0,
                       lambda_depth_rec=19.0, lambda_depth_gp=23.0, confidence_beta=0.1)


def _quality():
    quality = QualityModel(image_size=32, base_filters=4, num_downsamples=3, dense_units=8)
    quality(np.zeros((1, 32, 32, 3), np.float32))
    return quality


def _stargan_weights(hp):
    """StarGAN's terms (with L_qual): the adversarial terms unweighted, as in the reference."""
    return {"d": {"adversarial": 1.0, "gradient_penalty": hp["lambda_gp"], "classification": hp["lambda_cls"]},
            "g": {"adversarial": 1.0, "classification": hp["lambda_cls"], "reconstruction": hp["lambda_rec"],
                  "quality": hp["lambda_qual"]}}


def stargan():
    keras.utils.set_random_seed(0)
    model = StarGAN(label_sizes=TWO_ATTRIBUTES, d_downsamples=5, quality_model=_quality(), **TINY_RGB, **STARGAN_HP)
    return model, _stargan_weights(STARGAN_HP)


def legan():
    identity, quality = _judges()
    keras.utils.set_random_seed(0)
    hp = dict(STARGAN_HP, lambda_id=13.0)
    model = LEGAN(label_sizes=TWO_ATTRIBUTES, d_downsamples=5, identity_model=identity, quality_model=quality,
                  **TINY_RGB, **hp)
    expected = _stargan_weights(hp)
    expected["g"]["identity"] = hp["lambda_id"]
    return model, expected


def depth_network():
    keras.utils.set_random_seed(0)
    features = TinyFeatures()
    features(keras.ops.zeros((1, 32, 32, 1)))
    model = DepthNetworkGAN(label_sizes=EXPRESSIONS, d_downsamples=3, feature_network=features, **TINY_RGB,
                            **DEPTH_NETWORK_HP)
    hp = DEPTH_NETWORK_HP
    # The confidence penalty regularises D_depth's classifier and carries lambda_cls, as that classification.
    return model, {"d": {"adversarial": hp["lambda_adv"], "gradient_penalty": hp["lambda_gp"],
                         "classification": hp["lambda_cls"], "confidence": hp["lambda_cls"]},
                   "g": {"adversarial": hp["lambda_adv"], "classification": hp["lambda_cls"],
                         "reconstruction": hp["lambda_rec"], "pixel": hp["lambda_pix"],
                         "perceptual": hp["lambda_per"]}}


def depth_guided():
    keras.utils.set_random_seed(0)
    depth_generator = DepthGenerator(32, "depth", base_filters=4, num_residual_blocks=1)
    depth_discriminator = make_depth_discriminator(32, "depth", 3, 4, 3)
    model = DepthGuidedStarGAN(label_sizes=EXPRESSIONS, d_downsamples=3, quality_model=_quality(),
                               depth_generator=depth_generator, depth_discriminator=depth_discriminator,
                               **TINY_RGB, **DEPTH_GUIDED_HP)
    hp = DEPTH_GUIDED_HP
    w = hp["depth_weight"]  # L_rgb + w_depth * L_depth: every depth term carries w_depth times its own lambda
    expected = _stargan_weights(hp)
    expected["d"].update(depth_adversarial=w * hp["lambda_depth_adv"], depth_gradient_penalty=w * hp["lambda_depth_gp"],
                         depth_classification=w * hp["lambda_depth_cls"], depth_confidence=w * hp["lambda_depth_cls"])
    expected["g"].update(depth_adversarial=w * hp["lambda_depth_adv"], depth_classification=w * hp["lambda_depth_cls"],
                         depth_reconstruction=w * hp["lambda_depth_rec"])
    return model, expected


MODELS = {"stargan": stargan, "legan": legan, "depth_network": depth_network, "depth_guided": depth_guided}


@pytest.fixture(scope="module", params=list(MODELS))
def built(request):
    model, expected = MODELS[request.param]()
    recorder = gradient_recorder_class()
    model.build_all(recorder("d_recorder"), recorder("g_recorder"))
    data = batches(BATCH)
    return model, expected, {name: tf.constant(value) for name, value in data.items()}


def _terms(model, side, batch, step):
    """The step's per-example loss terms, computed as the step computes them (same networks, same draws)."""
    if side == "d":
        fakes = model.translate(batch["image"], model.random_targets(batch, step), training=False)
        return model.discriminator_losses(batch, fakes, step)
    targets = model.random_targets(batch, step)
    fakes = model.translate(batch["image"], targets, training=True)
    return model.generator_losses(batch, fakes, model.reconstruct(batch, fakes, training=True), targets, step)


def _flat(gradients, variables):
    """One float64 vector; a variable a term does not reach has gradient 0, as the recorder stores it."""
    return np.concatenate([np.zeros(np.prod(v.shape)) if g is None else np.reshape(np.asarray(g, np.float64), [-1])
                           for g, v in zip(gradients, variables)])


def _per_term(model, side, batch, step):
    """{term: per-example values}, and {term: gradient of its batch loss (sum / global batch)} over the side's
    variables."""
    variables = model.discriminator_variables() if side == "d" else model.generator_variables()
    with tf.GradientTape(persistent=True) as tape:
        terms = _terms(model, side, batch, step)
        batch_losses = {name: tf.reduce_sum(value) / model.global_batch_size for name, value in terms.items()}
    gradients = {name: _flat(tape.gradient(loss, variables), variables)
                 for name, loss in batch_losses.items()}
    del tape
    return {name: np.asarray(value, np.float64) for name, value in terms.items()}, gradients


@pytest.mark.parametrize("side", ["d", "g"])
def test_each_term_has_its_own_weight_and_the_step_minimises_their_weighted_sum(built, side):
    model, expected, batch = built
    weights = model.discriminator_loss_weights() if side == "d" else model.generator_loss_weights()
    assert weights == expected[side]

    step = tf.constant(STEP, tf.int64)
    terms, gradients = _per_term(model, side, batch, step)  # before the step: a recorder leaves the weights alone
    assert list(terms) == list(weights)
    if side == "d":
        metrics, recorder = model.discriminator_step(batch, step), model.d_optimizer
    else:
        metrics, recorder = model.generator_step(batch, step), model.g_optimizer
    metrics = {name: float(value) for name, value in metrics.items()}
    assert list(metrics) == [f"{side}/{name}" for name in weights] + [f"{side}/total"]

    # The metrics: each term's batch mean, and the total as sum(weight * term). The step computes each term with
    # the same float32 ops on the same inputs as this test; at most the order of their sums differs
    # (GRADIENT_BOUND's argument, relative to the mean of |term|).
    for name, value in terms.items():
        np.testing.assert_allclose(metrics[f"{side}/{name}"], value.mean(), rtol=0,
                                   atol=GRADIENT_BOUND * np.abs(value).mean())
    # The step's total and its term means average the same float32 per-example values; they differ by the
    # roundings of T products and T - 1 additions per example, and of each mean (B - 1 additions, a division):
    # at most (T + B + 2) u of sum_t w_t mean|term_t|, first order.
    total = sum(weight * metrics[f"{side}/{name}"] for name, weight in weights.items())
    magnitude = sum(weight * np.abs(terms[name]).mean() for name, weight in weights.items())
    np.testing.assert_allclose(metrics[f"{side}/total"], total, rtol=0,
                               atol=(len(weights) + BATCH + 2) * U * magnitude)

    # The gradient the step minimised: sum_t w_t g_t (GRADIENT_BOUND above).
    recorded = recorder.recorded().astype(np.float64)
    scale = sum(weight * np.linalg.norm(gradients[name]) for name, weight in weights.items())
    combined = sum(weight * gradients[name] for name, weight in weights.items())
    difference = np.linalg.norm(recorded - combined) / scale
    assert difference <= GRADIENT_BOUND, difference
    # The control: had the step weighted any two terms of different weights by each other's weights, it would
    # have minimised combined + (w_b - w_a)(g_a - g_b), and the comparison above would have failed.
    for a, b in itertools.combinations(weights, 2):
        if weights[a] != weights[b]:
            moved = abs(weights[a] - weights[b]) * np.linalg.norm(gradients[a] - gradients[b]) / scale
            assert moved > GRADIENT_BOUND, (a, b, moved)
