"""LEGAN's supervised terms: an expression teacher's edits and the data's own relit copies (not in the paper).

Each term's value is checked against the same sum computed by hand from the networks on a known batch,
the G step is shown to learn toward the teacher on a fixed batch, and the recipe's checks of a teacher
and of paired data are one-line errors before anything trains.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from legan_tf import losses, pretrained
from legan_tf.data import lighting_copies
from legan_tf.errors import ConfigError
from legan_tf.gan import LEGAN
from legan_tf.gan.legan import TEACHER_JOINT_STREAM, TEACHER_TARGET_STREAM
from legan_tf.labels import one_hot_labels
from legan_tf.models.classifier import AttributeClassifier
from legan_tf.models.stargan import StarGANGenerator
from legan_tf.tasks.legan import LEGANTask

LABELS = {"expression": 3, "lighting": 4}
NAMES = {"expression": ("a", "b", "c"), "lighting": ("0", "1", "2", "3")}
TINY = dict(image_size=32, label_sizes=LABELS, g_filters=4, g_residual_blocks=1, d_filters=4, d_downsamples=5,
            lambda_qual=0.0, lambda_id=0.0)
# The teacher names the expressions in another order: G's a, b, c are its 1, 2, 0.
TEACHER_NAMES = ("c", "a", "b")
TEACHER_LABELS = {"size": 3, "expression": (1, 2, 0), "lighting": None}


def _teacher(image_size=32):
    keras.utils.set_random_seed(7)
    teacher = StarGANGenerator(image_size=image_size, num_labels=3, base_filters=4, num_residual_blocks=1)
    teacher((np.zeros((1, image_size, image_size, 3), np.float32), np.zeros((1, 3), np.float32)))
    return teacher


def _classifier():
    keras.utils.set_random_seed(8)
    classifier = AttributeClassifier(image_size=16, head_classes={"expression": 3}, base_filters=4, num_downsamples=2)
    classifier(np.zeros((1, 16, 16, 3), np.float32))
    return classifier


def _model(**overrides):
    keras.utils.set_random_seed(0)
    model = LEGAN(global_batch_size=4, **{**TINY, **overrides})
    model.build_all(keras.optimizers.Adam(1e-3, 0.5, 0.999), keras.optimizers.Adam(1e-3, 0.5, 0.999))
    return model


def _batch():
    rng = np.random.default_rng(3)
    return {"image": tf.constant(rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)),
            "expression": tf.constant([0, 1, 2, 1]), "lighting": tf.constant([3, 2, 1, 0]),
            lighting_copies.COPY: tf.constant(rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)),
            lighting_copies.COPY_LABEL: tf.constant([1, -1, 0, 3])}


def _edit(model, images, expression, lighting):
    labels = one_hot_labels({"expression": tf.constant(expression), "lighting": tf.constant(lighting)}, LABELS)
    return model.generator((images, labels), training=True).numpy()


def test_the_paired_term_is_the_l1_to_each_faces_copy_and_zero_without_one():
    model = _model(paired_lighting_weight=2.0)
    assert model.generator_loss_weights()["paired_lighting"] == 2.0
    batch = _batch()
    terms = model.supervised_losses(batch, tf.constant(5, tf.int64))
    assert list(terms) == ["paired_lighting"]
    # The lighting-only edit to the copy's light (own expression); the face with no copy (-1) adds 0.
    edits = _edit(model, batch["image"], [0, 1, 2, 1], [1, 0, 0, 3])
    expected = np.abs(edits - batch[lighting_copies.COPY].numpy()).mean(axis=(1, 2, 3)) * [1, 0, 1, 1]
    np.testing.assert_allclose(terms["paired_lighting"].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_the_teacher_terms_compare_g_with_the_teachers_edit_to_the_same_other_expression():
    teacher, classifier = _teacher(), _classifier()
    model = _model(teacher_pixel_weight=1.0, teacher_feature_weight=0.5, expression_teacher=teacher,
                   teacher_labels=TEACHER_LABELS, teacher_features=classifier)
    batch, step = _batch(), tf.constant(9, tf.int64)
    terms = model.supervised_losses(batch, step)
    assert list(terms) == ["teacher_pixel", "teacher_feature"]
    draw = model.uniform_per_example(TEACHER_TARGET_STREAM, step, 4).numpy()
    targets = (np.array([0, 1, 2, 1]) + 1 + np.floor(draw * 2).astype(int)) % 3
    assert np.all(targets != [0, 1, 2, 1])  # an expression-only edit to another expression
    edits = _edit(model, batch["image"], targets, [3, 2, 1, 0])
    taught = teacher((batch["image"], tf.one_hot(np.array([1, 2, 0])[targets], 3)), training=False).numpy()
    np.testing.assert_allclose(terms["teacher_pixel"].numpy(), np.abs(edits - taught).mean(axis=(1, 2, 3)),
                               rtol=1e-5, atol=1e-6)

    def maps(images):  # the classifier's stage maps at its own 16 px input
        return classifier.stage_features(tf.image.resize(images, (16, 16), antialias=True))

    expected = losses.perceptual_loss(maps(taught), maps(edits)).numpy()
    np.testing.assert_allclose(terms["teacher_feature"].numpy(), expected, rtol=1e-4, atol=1e-6)
    assert len(maps(taught)) == 2 and maps(taught)[1].shape == (4, 4, 4, 8)  # two stride-2 stages


def _distance_to_teacher(model, teacher, batch):
    """Mean L1 between G's and the teacher's edits of each face to each other expression (own lighting)."""
    distances = []
    for shift in (1, 2):
        targets = (batch["expression"].numpy() + shift) % 3
        taught = teacher((batch["image"], tf.one_hot(np.array([1, 2, 0])[targets], 3)), training=False).numpy()
        distances.append(np.abs(_edit(model, batch["image"], targets, batch["lighting"].numpy()) - taught).mean())
    return float(np.mean(distances))


def test_the_generator_step_learns_toward_the_teacher_and_leaves_the_teacher_alone():
    batch = {key: value for key, value in _batch().items() if key in ("image", "expression", "lighting")}
    distances = {}
    for weight in (10.0, 0.0):  # the same 40 G steps with the teacher's term, and without it
        teacher = _teacher()
        frozen = [value.numpy().copy() for value in teacher.weights]
        model = _model(teacher_pixel_weight=weight, expression_teacher=teacher, teacher_labels=TEACHER_LABELS)
        assert ("g/teacher_pixel" in model.metric_names("g")) == (weight > 0)
        step = tf.function(model.generator_step)
        for number in range(1, 41):
            step(batch, tf.constant(number, tf.int64))
        distances[weight] = _distance_to_teacher(model, teacher, batch)
        for before, after in zip(frozen, teacher.weights):
            np.testing.assert_array_equal(before, after.numpy())
    # A random teacher's edits of four fixed faces are a target G can fit: with the term, G's edits end nearer
    # the teacher's than the same steps leave them without it (measured: 0.24 against 0.33).
    assert distances[10.0] < 0.85 * distances[0.0]


def test_the_supervised_terms_need_their_networks():
    with pytest.raises(ValueError, match="need an expression_teacher"):
        _model(teacher_pixel_weight=1.0)
    with pytest.raises(ValueError, match="needs teacher_features"):
        _model(teacher_feature_weight=1.0, expression_teacher=_teacher(), teacher_labels=TEACHER_LABELS)


# -- the recipe's checks --------------------------------------------------------------------------------

def _save_teacher(folder, names, image_size=32):
    os.makedirs(folder, exist_ok=True)
    teacher = _teacher(image_size)
    path = os.path.join(folder, "generator.keras")
    teacher.save(path)
    with open(os.path.join(folder, "labels.json"), "w") as handle:
        json.dump(names, handle)
    return path


def _task(**hyperparameters):
    settings = dict(g_filters=4, g_residual_blocks=1, d_filters=4, d_downsamples=5, lambda_qual=0.0, lambda_id=0.0)
    return LEGANTask(NAMES, 32, 4, 10, data_features=("image", "expression", "lighting", "identity"),
                     **{**settings, **hyperparameters})


def test_the_recipe_maps_the_teachers_labels_by_name(tmp_path):
    path = _save_teacher(str(tmp_path / "t"), {"expression": list(TEACHER_NAMES)})
    task = _task(expression_teacher=path, teacher_pixel_weight=1.0)
    teacher, labels = task._load_teacher()
    assert labels == TEACHER_LABELS and teacher.num_labels == 3


def test_the_shipped_editor_teaches_a_legan_of_its_expressions_and_size():
    names = dict(expression=("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"), lighting=("x", "y"))
    task = LEGANTask(names, 64, 4, 10, data_features=("image", "identity"), g_filters=4, g_residual_blocks=1,
                     d_filters=4, d_downsamples=5, lambda_qual=0.0, lambda_id=0.0, teacher_pixel_weight=1.0,
                     expression_teacher=f"{pretrained.PREFIX}stargan-fer2013-64")
    assert task._load_teacher()[1] == {"size": 7, "expression": tuple(range(7)), "lighting": None}


@pytest.mark.parametrize("names, size, words", [
    ({"expression": ["a", "b"]}, 32, r"its expression labels \(a, b\) lack c of the data's"),
    ({"lighting": ["0", "1", "2", "3"]}, 32, "are not an expression group"),
    ({"expression": ["a", "b", "c", "d"]}, 32, "names 4 labels, the generator reads 3"),
    ({"expression": ["a", "b", "c"]}, 64, "it edits 64 px faces, but --image_size=32"),
])
def test_a_teacher_that_does_not_fit_is_a_one_line_error(tmp_path, names, size, words):
    path = _save_teacher(str(tmp_path / "t"), names, image_size=size)
    with pytest.raises(ConfigError, match=words) as raised:
        _task(expression_teacher=path, teacher_pixel_weight=1.0)
    assert "\n" not in str(raised.value) and "--legan_expression_teacher=" in str(raised.value)


def test_the_recipes_settings_that_do_not_go_together_are_one_line_errors(tmp_path):
    path = _save_teacher(str(tmp_path / "t"), {"expression": list(TEACHER_NAMES)})
    cases = [
        (dict(teacher_pixel_weight=1.0), "need a teacher"),
        (dict(expression_teacher=path), "read only with --legan_teacher_pixel_weight"),
        (dict(expression_teacher=path, teacher_feature_weight=1.0), "go together"),
        (dict(expression_teacher=str(tmp_path / "none.keras"), teacher_pixel_weight=1.0), "no such model"),
        (dict(expression_teacher="pretrained:nothing", teacher_pixel_weight=1.0), "pretrained:nothing"),
    ]
    for settings, words in cases:
        with pytest.raises(ConfigError, match=words) as raised:
            _task(**settings)
        assert "\n" not in str(raised.value)
    with pytest.raises(ConfigError, match="needs data that names each face's subject"):
        LEGANTask(NAMES, 32, 4, 10, data_features=("image", "expression", "lighting"), d_downsamples=5,
                  lambda_qual=0.0, lambda_id=0.0, paired_lighting_weight=1.0)
    assert _task(paired_lighting_weight=1.0).needs_lighting_copies and not _task().needs_lighting_copies


# -- the supervised warm-up ---------------------------------------------------------------------------

def test_the_warm_up_schedule_runs_the_supervised_step_alone_then_the_gan_steps(tmp_path):
    path = _save_teacher(str(tmp_path / "t"), {"expression": list(TEACHER_NAMES)})
    task = LEGANTask(NAMES, 32, 4, 20, data_features=("image", "expression", "lighting", "identity"), g_filters=4,
                     g_residual_blocks=1, d_filters=4, d_downsamples=5, lambda_qual=0.0, lambda_id=0.0, n_critic=5,
                     decay_steps=10, expression_teacher=path, teacher_pixel_weight=1.0, supervised_warmup_steps=5)
    task.build()
    runs = {entry.name: [step for step in range(1, 21) if entry.runs_at(step)] for entry in task.step_schedule()}
    assert runs == {"warmup": [1, 2, 3, 4, 5], "discriminator": list(range(6, 21)), "generator": [10, 15, 20]}
    assert [entry.finished(6) for entry in task.step_schedule()] == [True, False, False]
    # D steps 15 times and G 5 + 3 times: each decays over its own share of the last 10 steps (G: 10 / 5).
    d_rate, g_rate = task.model.d_optimizer._learning_rate, task.model.g_optimizer._learning_rate  # the schedules
    assert (d_rate.total_steps, d_rate.decay_steps, g_rate.total_steps, g_rate.decay_steps) == (15, 10, 8, 2)
    assert task.model.metric_names("warmup") == ["warmup/teacher_pixel", "warmup/total"]


def test_a_warm_up_step_moves_g_toward_the_teacher_and_leaves_d_alone():
    batch = {key: value for key, value in _batch().items() if key in ("image", "expression", "lighting")}
    teacher = _teacher()
    model = _model(teacher_pixel_weight=10.0, expression_teacher=teacher, teacher_labels=TEACHER_LABELS,
                   supervised_warmup_steps=40)
    before = _distance_to_teacher(model, teacher, batch)
    critic = [value.numpy().copy() for value in model.discriminator.weights]
    step = tf.function(model.supervised_step)
    first = step(batch, tf.constant(1, tf.int64))
    # The step's total is its one term times its weight (nothing adversarial in it).
    np.testing.assert_allclose(float(first["warmup/total"]), 10.0 * float(first["warmup/teacher_pixel"]), rtol=1e-5)
    for number in range(2, 41):
        step(batch, tf.constant(number, tf.int64))
    # 40 supervised steps bring G's edits of four fixed faces much nearer a random teacher's than G started
    # (the G-step test above measures 0.24 from 0.33 with the adversarial terms beside the same term).
    assert _distance_to_teacher(model, teacher, batch) < 0.85 * before
    for frozen, after in zip(critic, model.discriminator.weights):
        np.testing.assert_array_equal(frozen, after.numpy())
    with pytest.raises(ValueError, match="runs under the project's trainer"):
        model.train_step(batch)


def test_a_warm_up_needs_a_supervised_term_and_adversarial_steps_after_it(tmp_path):
    with pytest.raises(ValueError, match="supervised_warmup_steps needs a supervised term"):
        _model(supervised_warmup_steps=3)
    for settings, words in [(dict(supervised_warmup_steps=3), "none is on"),
                            (dict(supervised_warmup_steps=10, paired_lighting_weight=1.0), "leaves no adversarial")]:
        with pytest.raises(ConfigError, match=words) as raised:
            _task(**settings)
        assert "\n" not in str(raised.value) and "--legan_supervised_warmup_steps=" in str(raised.value)


# -- a warm-up that can move G: its own learning rate, the teacher's pixel term weighted toward its change ---

def test_the_change_weighted_l1_counts_the_pixels_the_target_changes_more():
    source = np.zeros((1, 2, 2, 1), np.float32)
    target = np.array([0.8, 0.0, 0.0, 0.0], np.float32).reshape(1, 2, 2, 1)  # the target changes one pixel
    predicted = np.array([0.0, 0.1, 0.1, 0.1], np.float32).reshape(1, 2, 2, 1)
    # Plain L1: (0.8 + 3 x 0.1) / 4. Focus 2: mean change 0.2, so the changed pixel weighs 1 + 2 x 0.8 / 0.2 = 9
    # and the others 1: (9 x 0.8 + 3 x 0.1) / 12.
    np.testing.assert_allclose(losses.change_weighted_l1_loss(target, predicted, source, 0.0), [1.1 / 4], rtol=1e-6)
    np.testing.assert_allclose(losses.change_weighted_l1_loss(target, predicted, source, 2.0), [7.5 / 12], rtol=1e-6)
    # A target equal to the source weighs every pixel 1: the plain L1, no division by zero.
    np.testing.assert_allclose(losses.change_weighted_l1_loss(source, predicted, source, 2.0), [0.3 / 4], rtol=1e-6)
    # Gradients flow to the prediction only, each pixel's in proportion to its weight.
    predicted = tf.constant(predicted)
    with tf.GradientTape() as tape:
        tape.watch(predicted)
        loss = losses.change_weighted_l1_loss(target, predicted, source, 2.0)
    np.testing.assert_allclose(tape.gradient(loss, predicted).numpy().ravel(), [-9 / 12, 1 / 12, 1 / 12, 1 / 12],
                               rtol=1e-6)


def test_the_paired_term_with_focus_weights_the_pixels_the_relighting_changes():
    model = _model(paired_lighting_weight=1.0, paired_lighting_focus=4.0)
    batch = _batch()
    terms = model.supervised_losses(batch, tf.constant(5, tf.int64))
    edits = _edit(model, batch["image"], [0, 1, 2, 1], [1, 0, 0, 3])
    copies, images = batch[lighting_copies.COPY].numpy(), batch["image"].numpy()
    # Each pixel weighs 1 + 4 x (the copy's change there over its mean change on that face); no copy adds 0.
    change = np.abs(copies - images).mean(axis=-1, keepdims=True)
    weight = np.broadcast_to(1 + 4.0 * change / change.mean(axis=(1, 2, 3), keepdims=True), edits.shape)
    expected = (weight * np.abs(edits - copies)).sum(axis=(1, 2, 3)) / weight.sum(axis=(1, 2, 3)) * [1, 0, 1, 1]
    np.testing.assert_allclose(terms["paired_lighting"].numpy(), expected, rtol=1e-5, atol=1e-6)
    plain = np.abs(edits - copies).mean(axis=(1, 2, 3)) * [1, 0, 1, 1]
    assert not np.allclose(expected, plain, rtol=1e-3)
    with pytest.raises(ConfigError, match="--legan_paired_lighting_focus=4 .* which is off") as raised:
        _task(paired_lighting_focus=4.0, teacher_pixel_weight=0.0)
    assert "\n" not in str(raised.value)


def test_the_teacher_pixel_term_with_focus_weights_the_teachers_change():
    teacher = _teacher()
    model = _model(teacher_pixel_weight=1.0, teacher_change_focus=3.0, expression_teacher=teacher,
                   teacher_labels=TEACHER_LABELS)
    batch, step = _batch(), tf.constant(9, tf.int64)
    terms = model.supervised_losses(batch, step)
    draw = model.uniform_per_example(TEACHER_TARGET_STREAM, step, 4).numpy()
    targets = (np.array([0, 1, 2, 1]) + 1 + np.floor(draw * 2).astype(int)) % 3
    edits = _edit(model, batch["image"], targets, [3, 2, 1, 0])
    taught = teacher((batch["image"], tf.one_hot(np.array([1, 2, 0])[targets], 3)), training=False).numpy()
    change = np.abs(taught - batch["image"].numpy()).mean(axis=-1, keepdims=True)
    weight = np.broadcast_to(1 + 3.0 * change / change.mean(axis=(1, 2, 3), keepdims=True), edits.shape)
    expected = (weight * np.abs(edits - taught)).sum(axis=(1, 2, 3)) / weight.sum(axis=(1, 2, 3))
    np.testing.assert_allclose(terms["teacher_pixel"].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(expected, np.abs(edits - taught).mean(axis=(1, 2, 3)), rtol=1e-3)


def test_joint_teacher_edits_aim_at_the_teachers_edit_of_the_relit_copy():
    teacher = _teacher()
    model = _model(teacher_pixel_weight=1.0, teacher_change_focus=3.0, teacher_joint_share=0.5,
                   expression_teacher=teacher, teacher_labels=TEACHER_LABELS)
    batch = _batch()
    images, copies = batch["image"].numpy(), batch[lighting_copies.COPY].numpy()
    # Find a step whose draws make some faces joint and leave others expression-only, so both kinds are checked.
    for value in range(100):
        step = tf.constant(value, tf.int64)
        joint = (model.uniform_per_example(TEACHER_JOINT_STREAM, step, 4).numpy() < 0.5) & (np.array([1, -1, 0, 3]) >= 0)
        if 0 < joint.sum() < 3:
            break
    assert 0 < joint.sum() < 3
    terms = model.supervised_losses(batch, step)
    draw = model.uniform_per_example(TEACHER_TARGET_STREAM, step, 4).numpy()
    targets = (np.array([0, 1, 2, 1]) + 1 + np.floor(draw * 2).astype(int)) % 3
    # A joint face asks for its copy's light (1, 0, 3; the second face has none) and the teacher edits the copy.
    lights = np.where(joint, [1, -1, 0, 3], [3, 2, 1, 0])
    base = np.where(joint[:, None, None, None], copies, images)
    edits = _edit(model, batch["image"], targets, lights)
    taught = teacher((tf.constant(base), tf.one_hot(np.array([1, 2, 0])[targets], 3)), training=False).numpy()
    change = np.abs(taught - base).mean(axis=-1, keepdims=True)
    weight = np.broadcast_to(1 + 3.0 * change / change.mean(axis=(1, 2, 3), keepdims=True), edits.shape)
    expected = (weight * np.abs(edits - taught)).sum(axis=(1, 2, 3)) / weight.sum(axis=(1, 2, 3))
    np.testing.assert_allclose(terms["teacher_pixel"].numpy(), expected, rtol=1e-5, atol=1e-6)
    # Share 0 is the expression-only term of before; share 1 makes every face with a copy joint.
    plain = _model(teacher_pixel_weight=1.0, expression_teacher=teacher, teacher_labels=TEACHER_LABELS)
    everyone = _model(teacher_pixel_weight=1.0, teacher_joint_share=1.0, expression_teacher=teacher,
                      teacher_labels=TEACHER_LABELS)
    plain_terms = plain.supervised_losses(batch, step)["teacher_pixel"].numpy()
    all_terms = everyone.supervised_losses(batch, step)["teacher_pixel"].numpy()
    np.testing.assert_allclose(all_terms[1], plain_terms[1], rtol=1e-5)  # no copy: expression-only
    assert not np.allclose(all_terms[[0, 2, 3]], plain_terms[[0, 2, 3]], rtol=1e-3)


def test_the_joint_share_reads_the_copies_and_needs_a_teacher_and_subjects(tmp_path):
    path = _save_teacher(str(tmp_path / "t"), {"expression": list(TEACHER_NAMES)})
    # The joint edits read each face's copy, with or without the copies' own term.
    assert _task(expression_teacher=path, teacher_pixel_weight=1.0, teacher_joint_share=0.5).needs_lighting_copies
    assert not _task(expression_teacher=path, teacher_pixel_weight=1.0).needs_lighting_copies
    with pytest.raises(ConfigError, match="--legan_teacher_joint_share=0.5 .* no teacher term") as raised:
        _task(teacher_joint_share=0.5, paired_lighting_weight=1.0)
    assert "\n" not in str(raised.value)
    with pytest.raises(ConfigError, match="--legan_teacher_joint_share=0.5 needs data that names") as raised:
        LEGANTask(NAMES, 32, 4, 10, data_features=("image", "expression", "lighting"), g_filters=4,
                  g_residual_blocks=1, d_filters=4, d_downsamples=5, lambda_qual=0.0, lambda_id=0.0,
                  teacher_pixel_weight=1.0, expression_teacher=path,
                  teacher_joint_share=0.5)
    assert "\n" not in str(raised.value)


def test_the_warm_up_has_its_own_learning_rate_then_gs_schedule(tmp_path):
    path = _save_teacher(str(tmp_path / "t"), {"expression": list(TEACHER_NAMES)})
    task = LEGANTask(NAMES, 32, 4, 20, learning_rate=1e-4, data_features=("image", "expression", "lighting"),
                     g_filters=4, g_residual_blocks=1, d_filters=4, d_downsamples=5, lambda_qual=0.0, lambda_id=0.0,
                     n_critic=5, decay_steps=10, expression_teacher=path, teacher_pixel_weight=1.0,
                     supervised_warmup_steps=5, supervised_warmup_learning_rate=2e-3)
    task.build()
    g_rate, d_rate = task.model.g_optimizer._learning_rate, task.model.d_optimizer._learning_rate
    # G's updates 0-4 are the warm-up's; 5-7 the GAN's G steps (at steps 10, 15, 20), the last 2 decaying.
    rates = [float(g_rate(update)) for update in range(8)]
    np.testing.assert_allclose(rates, [2e-3] * 5 + [1e-4, 1e-4, 5e-5], rtol=1e-6)
    assert float(d_rate(0)) == pytest.approx(1e-4)  # D is not warmed up
    again = type(g_rate).from_config(g_rate.get_config())
    np.testing.assert_allclose([float(again(update)) for update in range(8)], rates, rtol=1e-6)
    for settings, words in [(dict(supervised_warmup_learning_rate=1e-3, paired_lighting_weight=1.0),
                             "--legan_supervised_warmup_learning_rate=0.001 .* there is none"),
                            (dict(teacher_change_focus=2.0, paired_lighting_weight=1.0),
                             "--legan_teacher_change_focus=2 .* which is off")]:
        with pytest.raises(ConfigError, match=words) as raised:
            _task(**settings)
        assert "\n" not in str(raised.value)
