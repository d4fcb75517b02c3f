"""The StarGAN recipe: fit() through train_step, replica-independent maths, targets and schedules."""


import keras
import numpy as np
import pytest
import tensorflow as tf

from legan_tf.errors import ConfigError
from legan_tf.gan import StarGAN
from legan_tf.labels import one_hot_labels
from legan_tf.tasks.stargan import StarGANTask
from legan_tf.optimizers import LinearDecayAfter

LABELS = {"expression": 3, "lighting": 4}
TINY = dict(image_size=32, label_sizes=LABELS, g_filters=4, g_residual_blocks=1, d_filters=4, d_downsamples=5)


def _batch(count=8, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": rng.uniform(-1, 1, (count, 32, 32, 3)).astype(np.float32),
            "expression": rng.integers(0, 3, count).astype(np.int32),
            "lighting": rng.integers(0, 4, count).astype(np.int32)}


def _model(global_batch=8, **overrides):
    keras.utils.set_random_seed(0)
    model = StarGAN(global_batch_size=global_batch, **{**TINY, **overrides})
    model.build_all(keras.optimizers.Adam(1e-3, 0.5, 0.999), keras.optimizers.Adam(1e-3, 0.5, 0.999))
    return model


def test_label_vector_is_concatenated_one_hot_groups():
    vector = one_hot_labels({"expression": [2, 0], "lighting": [1, 3]}, LABELS).numpy()
    np.testing.assert_array_equal(vector, [[0, 0, 1, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0, 1]])


def test_random_targets_differ_from_the_source_and_cover_every_other_class():
    model = _model(global_batch=64)
    batch = _batch(64)
    seen = {name: set() for name in LABELS}
    for step in range(20):
        targets = model.random_targets(batch, tf.constant(step, tf.int64))
        for name, size in LABELS.items():
            assert np.all(targets[name].numpy() != batch[name])
            assert np.all((0 <= targets[name].numpy()) & (targets[name].numpy() < size))
            seen[name] |= set(zip(batch[name].tolist(), targets[name].numpy().tolist()))
    assert len(seen["lighting"]) == 4 * 3  # every (source, other class) pair occurs


def fit_equals_the_updates_by_hand(make_model, n_critic=2, num_batches=4):
    """fit() over known batches against the same D and G updates called by hand on a twin model.

    fit (run eagerly, so it runs the ops train_step names, as the by-hand calls do) must number its steps
    as the distributed trainer does, from 1: D on batch i with step i + 1, then G on that batch with the
    same step whenever it is a multiple of n_critic (batches n_critic - 1, 2 n_critic - 1, ...). Then a
    fit() run and a trainer run draw the same random targets on the same batches.
    Exact: both twins start from the same seeded weights and run the same ops on the same shapes in this
    process, so any other batch, order, step or G schedule gives other weights.
    Returns (fitted, by_hand, history).
    """
    data = _batch(8 * num_batches)
    fitted, by_hand = make_model(n_critic=n_critic), make_model(n_critic=n_critic)
    for a, b in zip(fitted.weights, by_hand.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    initial = {w.path: w.numpy().copy() for w in fitted.generator.weights + fitted.discriminator.weights}
    fitted.compile(run_eagerly=True)
    history = fitted.fit(tf.data.Dataset.from_tensor_slices(data).batch(8), epochs=1, verbose=0, shuffle=False)
    last = {}
    for index in range(num_batches):
        batch = {key: tf.constant(value[8 * index:8 * index + 8]) for key, value in data.items()}
        last = dict(by_hand.discriminator_step(batch, tf.constant(index + 1, tf.int64)))
        if (index + 1) % n_critic == 0:
            last.update(by_hand.generator_step(batch, tf.constant(index + 1, tf.int64)))
    assert int(fitted.d_optimizer.iterations.numpy()) == num_batches
    assert int(fitted.g_optimizer.iterations.numpy()) == num_batches // n_critic
    pairs = (list(zip(fitted.weights, by_hand.weights))
             + list(zip(fitted.d_optimizer.variables, by_hand.d_optimizer.variables))
             + list(zip(fitted.g_optimizer.variables, by_hand.g_optimizer.variables)))
    for a, b in pairs:
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    # Both networks trained: every D weight and the G kernels moved (the comparison is not of two idle twins).
    moved = {w.path for w in fitted.generator.weights + fitted.discriminator.weights
             if not np.array_equal(w.numpy(), initial[w.path])}
    assert {w.path for w in fitted.discriminator.trainable_weights} <= moved
    assert any(w.path in moved for w in fitted.generator.trainable_weights)
    # fit's logs are the last train_step's metrics: the last batch's D update and (when its count is a multiple
    # of n_critic, as with the defaults) its G update.
    assert sorted(history.history) == sorted(last)
    for name, value in last.items():
        assert history.history[name] == [float(value)], name
    return fitted, by_hand, history


def test_fit_trains_discriminator_every_batch_and_generator_every_n_critic():
    model = _model(n_critic=2)
    model.compile()  # fit's default: a compiled train_step (XLA where keras picks it)
    data = tf.data.Dataset.from_tensor_slices(_batch(32)).batch(8)
    networks = (model.generator, model.discriminator)
    before = [[w.numpy().copy() for w in network.trainable_weights] for network in networks]
    history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    assert int(model.d_optimizer.iterations.numpy()) == 4
    assert int(model.g_optimizer.iterations.numpy()) == 2  # batches 1 and 3 (D counts 2 and 4)
    assert all(np.isfinite(values[-1]) for values in history.history.values())
    # Adam's first step moves each weight by about the learning rate, 1e-3: far outside allclose's 1e-5 relative.
    for network, saved in zip(networks, before):
        assert any(not np.allclose(a, w.numpy()) for a, w in zip(saved, network.trainable_weights)), network.name


def test_fit_runs_each_given_batch_through_the_d_and_g_updates_in_order():
    fit_equals_the_updates_by_hand(_model)


def test_generator_gradients_reach_every_weight():
    model = _model()
    batch = {key: tf.constant(value) for key, value in _batch().items()}
    before = [w.numpy().copy() for w in model.generator.trainable_weights]
    metrics = model.generator_step(batch, tf.constant(1, tf.int64))
    assert all(np.isfinite(float(value)) for value in metrics.values())
    unchanged = [w.path for w, b in zip(model.generator.trainable_weights, before) if np.array_equal(w.numpy(), b)]
    assert not unchanged


@pytest.mark.parametrize("ema_decay,updates,expected_decay", [(0.999, 1, 2 / 11), (0.5, 1, 2 / 11), (0.5, 12, 0.5)])
def test_ema_moves_toward_the_generator_with_a_warm_up(ema_decay, updates, expected_decay):
    model = _model(ema_decay=ema_decay)
    ema_before = model.generator_ema.weights[0].numpy().copy()
    for step in range(updates):
        model.generator_step({key: tf.constant(value) for key, value in _batch().items()}, tf.constant(step, tf.int64))
    model.update_ema()
    current = model.generator.weights[0].numpy()
    expected = expected_decay * ema_before + (1 - expected_decay) * current  # float64
    # float32 d * a + (1 - d) * w rounds d, 1 - d, both products and the sum: each <= 2**-24 of a term no larger
    # than |a| + |w|, so <= 5 * 2**-24 * (|a| + |w|) per weight, whatever the cancellation.
    bound = 5 * 2.0**-24 * (np.abs(ema_before) + np.abs(current))
    error = np.abs(model.generator_ema.weights[0].numpy() - expected)
    assert np.all(error <= bound), (error - bound).max()


def test_learning_rate_is_constant_then_decays_linearly_to_zero():
    schedule = LinearDecayAfter(1e-4, total_steps=200, decay_steps=100)
    rates = [float(schedule(step)) for step in (0, 99, 100, 150, 200, 250)]
    # float32 holds 1e-4 to within 2**-24 relative (inside assert_allclose's default rtol 1e-7), * 0.5 is exact,
    # and the clipped zeros are exact.
    np.testing.assert_allclose(rates, [1e-4, 1e-4, 1e-4, 5e-5, 0.0, 0.0], atol=1e-12)
    assert float(LinearDecayAfter(1e-4, 200, 0)(199)) == pytest.approx(1e-4)  # one float32 rounding, 6e-8


def test_bad_settings_stop_at_start_up_with_a_message():
    labels = {"expression": tuple("abc")}
    with pytest.raises(ConfigError, match="--image_size=48: the discriminator needs a size divisible by 64"):
        StarGANTask(labels, 48, 8, 10)
    with pytest.raises(ConfigError, match="needs a trained Q"):
        StarGANTask(labels, 64, 8, 10, lambda_qual=1.0)
    with pytest.raises(ConfigError, match="no such file"):
        StarGANTask(labels, 64, 8, 10, lambda_qual=1.0, quality_model="/nonexistent/q.keras")


def test_a_quality_model_is_checked_and_a_file_of_another_kind_is_refused(tmp_path, model_file):
    labels = {"expression": tuple("abc")}
    # model_file is a 32 px Q: it loads as one, and its size is checked against the data's.
    task = StarGANTask(labels, 64, 8, 10, lambda_qual=1.0, quality_model=model_file)
    with pytest.raises(ConfigError, match="rates 32 px images, but --image_size=64"):
        task.pretrained_models()
    from legan_tf.models.classifier import AttributeClassifier

    other = str(tmp_path / "attribute_classifier.keras")
    AttributeClassifier(64, {"expression": 3}, base_filters=4, num_downsamples=2).save(other)
    task = StarGANTask(labels, 64, 8, 10, lambda_qual=1.0, quality_model=other)
    with pytest.raises(ConfigError, match="an AttributeClassifier, not a QualityModel .train one with"):
        task.pretrained_models()
