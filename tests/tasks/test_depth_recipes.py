"""The depth network's pre-training and the depth-guided StarGAN (Bodur et al.): losses, gradients, learning."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from legan_tf import losses
from legan_tf.data.synthetic.render import FaceLab
from legan_tf.gan import DepthGuidedStarGAN, DepthNetworkGAN, StarGAN
from legan_tf.gan.depth import make_depth_discriminator
from legan_tf.geometry import geometry_from_depth, geometry_from_network_depth
from legan_tf.models.depth import DepthGenerator

EXPRESSIONS = 8
LABELS = {"expression": EXPRESSIONS}
TINY_DEPTH = dict(g_filters=4, g_residual_blocks=1, d_filters=4, d_downsamples=3)
TINY_STARGAN = dict(g_filters=4, g_residual_blocks=1, d_filters=4, d_downsamples=3)


def lab_faces(identities, lightings):
    """Every (identity, expression, lighting) of the 32 px lab's RGB-depth part, as a batch dict: images and
    depth in [-1, 1], as the data pipeline delivers them."""
    lab = FaceLab(32, "affectnet")
    combos = np.array(np.meshgrid(identities, range(EXPRESSIONS), lightings, indexing="ij")).reshape(3, -1)
    out = lab.render(*combos)
    return {"image": (out["rgb"] * 2 - 1).astype(np.float32),
            "depth": (out["depth"][..., None] * 2 - 1).astype(np.float32), "expression": combos[1].astype(np.int32)}


@pytest.fixture(scope="module")
def faces():
    return lab_faces([0, 1], [3])  # 16 faces


def _batch(faces, count=8):
    return {key: tf.constant(value[:count]) for key, value in faces.items()}


class TinyFeatures(keras.Model):
    """A two-layer stand-in for VGG19: a list of feature maps, as the perceptual loss takes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = keras.layers.Conv2D(4, 3, padding="same", activation="relu")
        self.second = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")

    def call(self, maps, training=False):
        first = self.first(maps)
        return [first, self.second(first)]


def _optimizers():
    return keras.optimizers.Adam(1e-3, 0.5, 0.999), keras.optimizers.Adam(1e-3, 0.5, 0.999)


def depth_network(global_batch=8, features=False, **overrides):
    keras.utils.set_random_seed(0)
    feature_network = TinyFeatures() if features else None
    if feature_network is not None:
        feature_network(tf.zeros((1, 32, 32, 1)))
    model = DepthNetworkGAN(32, LABELS, global_batch, feature_network=feature_network,
                            **{**TINY_DEPTH, "n_critic": 1, **overrides})
    model.build_all(*_optimizers())
    return model


def test_pretraining_terms_equal_the_papers_losses_on_the_batch(faces):
    model = depth_network(features=True, confidence_beta=0.5)
    batch = _batch(faces)
    real = geometry_from_network_depth(batch["depth"], "depth")
    predicted = model.generator.to_geometry(batch["image"])
    _, real_logits = model.discriminator(real)
    features = model.feature_network
    # Each expected value is computed before the step by the same ops on the same inputs, in this process:
    # the step's metric (its mean over the batch) can differ only by the order of a float32 mean of 8 values,
    # at most 8 u of its size (u = 6e-8), inside rtol 1e-5.
    expected_d = {"d/classification": losses.classification_loss(real_logits["expression"], batch["expression"]),
                  "d/confidence": -0.5 * losses.entropy(real_logits["expression"])}
    expected_g = {"g/pixel": losses.l1_loss(real, predicted),
                  "g/reconstruction": losses.cycle_loss(batch["image"], model.generator.to_rgb(predicted)),
                  "g/perceptual": losses.perceptual_loss(features(real), features(predicted))}
    d_metrics = model.discriminator_step(batch, tf.constant(1, tf.int64))
    assert list(d_metrics) == ["d/adversarial", "d/gradient_penalty", "d/classification", "d/confidence", "d/total"]
    for name, value in expected_d.items():
        assert float(d_metrics[name]) == pytest.approx(float(tf.reduce_mean(value)), rel=1e-5), name
    # G's terms are taken at the weights the D step left G with (D's step never touches G).
    g_metrics = model.generator_step(batch, tf.constant(1, tf.int64))
    assert list(g_metrics) == ["g/adversarial", "g/classification", "g/reconstruction", "g/pixel", "g/perceptual",
                               "g/total"]
    for name, value in expected_g.items():
        assert float(g_metrics[name]) == pytest.approx(float(tf.reduce_mean(value)), rel=1e-5), name
    # The confidence penalty is -beta * entropy: at most 0 and at least -beta * log 8.
    assert -0.5 * np.log(EXPRESSIONS) <= float(d_metrics["d/confidence"]) < 0


def test_pretraining_updates_every_weight_of_g_depth_both_ways_and_of_d_depth(faces):
    model = depth_network()
    batch = _batch(faces)
    networks = {"generator": model.generator, "discriminator": model.discriminator}
    before = {name: [w.numpy().copy() for w in net.trainable_weights] for name, net in networks.items()}
    model.discriminator_step(batch, tf.constant(1, tf.int64))
    model.generator_step(batch, tf.constant(1, tf.int64))
    for name, network in networks.items():
        unchanged = [w.path for w, b in zip(network.trainable_weights, before[name]) if np.array_equal(w.numpy(), b)]
        assert not unchanged, (name, unchanged)
    # Without a feature network or with beta 0 the terms are left out, not computed as zeros.
    plain = depth_network(confidence_beta=0.0)
    assert "confidence" not in plain.discriminator_loss_weights()
    assert "perceptual" not in plain.generator_loss_weights()


def test_pretraining_learns_depth_of_unseen_faces():
    """Learning on easy data: 80 steps on 6 lab people bring the held-out depth error far below the start
    and below predicting one constant depth everywhere."""
    train, held = lab_faces(range(6), [0, 10]), lab_faces([100, 101], [5])
    model = depth_network(global_batch=16, g_filters=8, d_filters=8)
    truth = geometry_from_network_depth(held["depth"], "depth")

    def held_out_l1():
        return float(tf.reduce_mean(tf.abs(truth - model.generator.to_geometry(held["image"]))))

    constant = float(tf.reduce_mean(tf.abs(truth - tf.reduce_mean(train["depth"]))))
    start = held_out_l1()
    d_step, g_step = tf.function(model.discriminator_step), tf.function(model.generator_step)
    rng = np.random.default_rng(0)
    for step in range(1, 81):
        rows = rng.choice(len(train["image"]), 16, replace=False)
        batch = {key: tf.constant(value[rows]) for key, value in train.items()}
        d_step(batch, tf.constant(step, tf.int64))
        g_step(batch, tf.constant(step, tf.int64))
    end = held_out_l1()
    # Measured here: 0.62 -> 0.064 at 80 steps (the constant predictor: 0.52). The bounds leave a factor of
    # 2.4 or more on every side for other CPUs' paths; an untrained or broken pixel loss stays near the start.
    assert end < 0.25 * start, (start, end)
    assert end < 0.5 * constant, (constant, end)


def _depth_networks(geometry="depth"):
    keras.utils.set_random_seed(5)
    generator = DepthGenerator(32, geometry, base_filters=4, num_residual_blocks=1, name="depth_generator")
    discriminator = make_depth_discriminator(32, geometry, EXPRESSIONS, 4, 3)
    return generator, discriminator


def guided(depth_weight=0.3, **overrides):
    generator, discriminator = _depth_networks(overrides.get("geometry", "depth"))
    keras.utils.set_random_seed(0)
    model = DepthGuidedStarGAN(32, LABELS, 8, depth_generator=generator, depth_discriminator=discriminator,
                               depth_weight=depth_weight, **{**TINY_STARGAN, "n_critic": 1, **overrides})
    model.build_all(*_optimizers())
    return model


def test_without_depth_weight_it_is_stargan_step_for_step(faces):
    keras.utils.set_random_seed(0)
    stargan = StarGAN(32, LABELS, 8, **TINY_STARGAN, n_critic=1)
    stargan.build_all(*_optimizers())
    plain = guided(depth_weight=0.0)
    assert plain.extra_discriminators() == {}
    batch = _batch(faces)
    step = tf.constant(1, tf.int64)
    # Same seed, same construction order, same ops: exactly StarGAN's numbers.
    for a, b in zip(stargan.generator.weights + stargan.discriminator.weights,
                    plain.generator.weights + plain.discriminator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for update in ("discriminator_step", "generator_step"):
        got, expected = getattr(plain, update)(batch, step), getattr(stargan, update)(batch, step)
        assert {k: float(v) for k, v in got.items()} == {k: float(v) for k, v in expected.items()}, update
    for a, b in zip(stargan.generator.weights, plain.generator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_depth_guidance_adds_weighted_terms_and_trains_both_generators(faces):
    model = guided(depth_weight=0.3, confidence_beta=0.2, lambda_depth_rec=10.0)
    d_weights, g_weights = model.discriminator_loss_weights(), model.generator_loss_weights()
    assert {k: v for k, v in d_weights.items() if k.startswith("depth_")} == pytest.approx(
        {"depth_adversarial": 0.3, "depth_gradient_penalty": 3.0, "depth_classification": 0.3,
         "depth_confidence": 0.3})
    assert {k: v for k, v in g_weights.items() if k.startswith("depth_")} == pytest.approx(
        {"depth_adversarial": 0.3, "depth_classification": 0.3, "depth_reconstruction": 3.0})
    batch = _batch(faces)
    networks = {name: model.networks()[name] for name in ("generator", "depth_generator", "depth_discriminator")}
    before = {name: [w.numpy().copy() for w in net.trainable_weights] for name, net in networks.items()}
    d_metrics = model.discriminator_step(batch, tf.constant(1, tf.int64))
    assert {"d/depth_adversarial", "d/depth_confidence"} <= set(d_metrics)
    moved = lambda name: [not np.array_equal(w.numpy(), b) for w, b in zip(networks[name].trainable_weights,
                                                                            before[name])]
    assert all(moved("depth_discriminator"))
    assert not any(moved("depth_generator")) and not any(moved("generator"))  # D's step trains D's side only
    g_metrics = model.generator_step(batch, tf.constant(1, tf.int64))
    assert {"g/depth_adversarial", "g/depth_classification", "g/depth_reconstruction"} <= set(g_metrics)
    assert all(moved("depth_generator")) and any(moved("generator"))
    assert "depth_generator" in model.networks() and "depth_discriminator" in model.networks()


def test_the_depth_loss_reaches_the_rgb_generator(faces):
    """G_rgb's gradient with depth guidance differs from StarGAN's by w_depth times the depth terms' gradient."""
    batch = _batch(faces)
    targets = {"expression": tf.constant((faces["expression"][:8] + 3) % EXPRESSIONS)}

    def gradient(depth_weight):
        model = guided(depth_weight=depth_weight, train_depth_generator=False)
        with tf.GradientTape() as tape:
            fakes = model.translate(batch["image"], targets, training=True)
            terms = model.generator_losses(batch, fakes, model.reconstruct(batch, fakes, True), targets, 1)
            weights = model.generator_loss_weights()
            total = tf.reduce_mean(tf.add_n([weights[name] * terms[name] for name in weights]))
        return tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(total, model.generator.trainable_variables)], 0)

    without, with_depth = gradient(0.0), gradient(0.3)
    assert float(tf.norm(with_depth - without)) > 1e-3 * float(tf.norm(without))
    frozen = guided(depth_weight=0.3, train_depth_generator=False)
    assert not frozen.depth_generator.trainable
    assert len(frozen.generator_variables()) == len(frozen.generator.trainable_variables)


def test_mismatched_or_missing_depth_networks_are_refused():
    with pytest.raises(ValueError, match="needs the pre-trained"):
        DepthGuidedStarGAN(32, LABELS, 8, depth_weight=0.3, **TINY_STARGAN)
    generator, discriminator = _depth_networks("depth")
    with pytest.raises(ValueError, match="predicts 'depth'"):
        DepthGuidedStarGAN(32, LABELS, 8, depth_generator=generator, depth_discriminator=discriminator,
                           geometry="normals", **TINY_STARGAN)
    with pytest.raises(ValueError, match="classifies"):
        DepthGuidedStarGAN(32, {"expression": 6}, 8, depth_generator=generator, depth_discriminator=discriminator,
                           **TINY_STARGAN)
    with pytest.raises(ValueError, match="expressions only"):
        DepthNetworkGAN(32, {"expression": 8, "lighting": 4}, 8, **TINY_DEPTH)


def test_normals_variant_trains_on_normals_from_the_depth_maps(faces):
    model = guided(depth_weight=0.3, geometry="normals")
    assert model.depth_discriminator.input_channels == 3
    metrics = model.discriminator_step(_batch(faces), tf.constant(1, tf.int64))
    assert np.isfinite(float(metrics["d/depth_adversarial"])) and float(metrics["d/depth_classification"]) > 0


def test_fit_trains_the_depth_guided_model(faces):
    model = guided(depth_weight=0.3, n_critic=2)
    model.compile()
    data = tf.data.Dataset.from_tensor_slices(faces).batch(8)
    before = [w.numpy().copy() for w in model.depth_discriminator.trainable_weights]
    history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    assert int(model.d_optimizer.iterations.numpy()) == 2 and int(model.g_optimizer.iterations.numpy()) == 1
    assert "depth_classification" in " ".join(history.history)
    assert all(np.isfinite(values[-1]) for values in history.history.values())
    assert all(not np.array_equal(a, w.numpy()) for a, w in zip(before, model.depth_discriminator.trainable_weights))


@pytest.mark.parametrize("geometry", ["depth", "normals"])
def test_the_models_read_the_data_pipelines_depth_as_the_labs_exact_geometry(tmp_path, geometry):
    """From PNG files through the reader to the loss: the true geometry a model trains on is the lab's."""
    from legan_tf.data import DataConfig, open_source
    from legan_tf.data.synthetic.writer import write_face_lab

    write_face_lab(tmp_path, image_size=32, num_identities=1, seed=0, num_lightings=4, parts=("rgbd",),
                   progress=False)
    config = DataConfig(data_format="rgbd", data_path=str(tmp_path / "rgbd" / "manifest.csv"), image_size=32,
                        expression_names=FaceLab(32, "affectnet").expression_names)
    batch = next(iter(open_source(config).dataset(batch_size=8, training=False, repeat=False)))
    model = depth_network(geometry=geometry)
    got = model.real_geometry(batch).numpy()
    lab = FaceLab(32, "affectnet")
    expected = geometry_from_depth(lab.render(0, batch["expression"].numpy(), 0)["depth"][..., None], geometry).numpy()
    # Lighting does not change depth, so any light of the same face is its exact geometry. The files hold depth
    # in 16 bits, rounded to the nearest level: at most half a level, 0.5 / 65535 = 7.6e-6 in [0, 1], twice
    # that (1.53e-5) in network scale, plus float32 roundoff (~1e-7). Normals take a central difference of two
    # such values, off by at most 1.53e-5 / 2, times DEPTH_SPAN * 32 = 20: 1.5e-4 in dz/dx, which bounds the
    # normal's change.
    np.testing.assert_allclose(got, expected, atol=1.6e-5 if geometry == "depth" else 1.6e-4)
