"""Q trained through the training loop: it learns on easy data, and resume restores model, optimizer and step."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from legan_tf.data import DataConfig, distribute, open_source
from legan_tf.data.synthetic.writer import write_face_lab
from legan_tf.tasks.quality import QualityTask
from legan_tf.runs import RunDir
from legan_tf.runs.settings import TrainingSettings
from legan_tf.training.loop import TrainingLoop
from legan_tf.training.tensorflow_backend import TensorFlowBackend


@pytest.fixture(scope="module")
def ratings(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality_lab")
    write_face_lab(root, image_size=32, num_identities=80, seed=5, parts=("quality",), naturalness_variants=6,
                   progress=False)
    source = open_source(DataConfig(data_format="ratings", data_path=str(root / "quality" / "ratings.csv"),
                                    image_size=32, cache=True))
    return source.split(0.25, 0)


def _trainer(ratings, run_dir, steps, seed=0, checkpoint_every=10_000):
    train, test = ratings
    tf.keras.utils.set_random_seed(seed)
    task = QualityTask({}, 32, 32, steps, learning_rate=1e-3, base_filters=8, downsamples=5, dense_units=64)
    settings = TrainingSettings(train_steps=steps, log_every=50, sample_every=10_000, eval_every=10_000,
                                checkpoint_every=checkpoint_every, progress_bar=False, seed=seed)
    return TrainingLoop(task, TensorFlowBackend(task, tf.distribute.get_strategy(), distribute), run_dir, train, test,
                        settings)


def test_q_learns_to_rank_held_out_identities_by_naturalness(ratings, tmp_path):
    run_dir = RunDir.create(str(tmp_path), "q").path
    metrics = _trainer(ratings, run_dir, 1200).run()
    assert metrics["eval/spearman"] >= 0.8, metrics
    assert metrics["eval/fooled_accuracy"] >= 0.8, metrics
    assert os.path.exists(os.path.join(run_dir, "quality_model.keras"))


def test_resume_restores_weights_optimizer_and_step(ratings, tmp_path):
    run_dir = RunDir.create(str(tmp_path), "q").path
    first = _trainer(ratings, run_dir, 4)
    first.run()
    weights = [w.numpy().copy() for w in first.task.model.weights]

    second = _trainer(ratings, run_dir, 8, seed=123)  # fresh random weights, overwritten by the restore
    assert second.restore() == 4
    assert int(second.task.optimizer.iterations.numpy()) == 4
    for restored, saved in zip(second.task.model.weights, weights):
        np.testing.assert_array_equal(restored.numpy(), saved)
    second.run()
    assert int(second.backend.step.numpy()) == 8
    assert int(second.task.optimizer.iterations.numpy()) == 8


def test_an_image_size_q_cannot_take_is_refused_at_start_up():
    from legan_tf.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--image_size=48: .*not divisible by 2\*\*num_downsamples = 64"):
        QualityTask({}, 48, 8, 10, downsamples=6)


def test_interrupted_and_resumed_run_ends_where_an_uninterrupted_one_does(ratings, tmp_path):
    # Resume restores the data position too: steps 5..8 read the batches the uninterrupted run read.
    whole_dir = RunDir.create(str(tmp_path), "whole").path
    whole = _trainer(ratings, whole_dir, 8, checkpoint_every=4)
    whole.run()
    # An interrupted run: the same run directory as it stood after the step-4 checkpoint.
    interrupted_dir = RunDir.create(str(tmp_path), "interrupted").path
    checkpoints = os.path.join(interrupted_dir, "checkpoints")
    os.makedirs(checkpoints, exist_ok=True)
    for name in os.listdir(os.path.join(whole_dir, "checkpoints")):
        if name.startswith("ckpt-4."):
            shutil.copy(os.path.join(whole_dir, "checkpoints", name), checkpoints)
    tf.compat.v1.train.update_checkpoint_state(checkpoints, os.path.join(checkpoints, "ckpt-4"))

    resumed = _trainer(ratings, interrupted_dir, 8, checkpoint_every=4)
    resumed.run()
    assert int(resumed.backend.step.numpy()) == 8
    # Exact: the checkpoint round trip is bit-exact, and steps 5..8 then run the same traced ops on the same
    # batch shapes and the same batches in this process, so each kernel sums in the same order on this CPU.
    for got, expected in zip(resumed.task.model.weights, whole.task.model.weights):
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
