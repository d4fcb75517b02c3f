"""The identity recipe: LightCNN-29 v2 trained on subject identities, evaluated on unseen ones, exported for LEGAN."""

import dataclasses
import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from legan_tf.data import DataConfig, open_source, tfrecord
from legan_tf.data.synthetic.writer import write_face_lab
from legan_tf.errors import ConfigError
from legan_tf.statistics import identity_metrics, nearest_neighbours
from legan_tf.models.lightcnn import IdentityEmbedder
from legan_tf.tasks import identity as identity_task
from legan_tf.tasks.identity import IdentityTask

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO, "scripts", "train.py")
TINY = dict(channels=("8", "16", "16", "16", "16"), blocks=("1", "1", "1", "1"), embedding_dim=16, dropout=0.0)


@pytest.fixture(scope="module")
def tiny_lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    write_face_lab(root, image_size=32, num_identities=6, seed=0, num_lightings=2, parts=("multipie",),
                   progress=False)
    return root


@pytest.fixture(scope="module")
def splits(tiny_lab):
    config = DataConfig(data_format="multipie", data_path=str(tiny_lab / "multipie" / "manifest.csv"), image_size=32,
                        lighting_names=("00", "01"), holdout_fraction=0.34, split_seed=0)
    return open_source(config).split()


def _task(train, **overrides):
    task = IdentityTask(label_names=train.label_names, image_size=32, global_batch_size=16, train_steps=60,
                        learning_rate=2e-3, identities=train.identities(), **{**TINY, **overrides})
    keras.utils.set_random_seed(0)
    task.build()
    return task


def test_metrics_on_clear_cases():
    identities = np.array([0, 0, 1, 1, 2, 2])
    perfect = np.eye(3)[identities] + 0.01 * np.arange(6)[:, None]
    result = identity_metrics(perfect, identities)
    assert result["verification_auc"] == 1.0 and result["rank1_accuracy"] == 1.0
    assert result["tar_at_far_1pct"] == 1.0
    swapped = identity_metrics(np.eye(3)[[0, 1, 1, 2, 2, 0]], identities)
    assert swapped["rank1_accuracy"] == 0.0 and swapped["verification_auc"] < 0.5
    assert "verification_auc" not in identity_metrics(np.eye(2), [0, 0])  # no impostor pairs
    order, cosines = nearest_neighbours(perfect, 1)
    np.testing.assert_array_equal(order[:, 0], [1, 0, 3, 2, 5, 4])
    assert np.all(cosines[:, 0] > 0.99)


def test_identities_reach_the_batches_and_the_split_keeps_them_apart(splits):
    train, test = splits
    assert "identity" not in train.label_names
    assert set(train.identities()).isdisjoint(test.identities())
    assert train.num_identities + test.num_identities == 6
    batch = next(iter(train.dataset(8, training=True)))
    assert batch["identity"].dtype == tf.int32 and set(batch["identity"].numpy()) <= set(train.identities())


def test_tfrecord_shards_keep_the_identities(splits, tmp_path):
    train, test = splits
    output = str(tmp_path / "shards")
    tfrecord.prepare_output_dir(output, overwrite=False)
    source = open_source(train.config)
    tfrecord.write_tfrecords(source, output, num_shards=2, holdout_fraction=0.34, seed=0)
    shards = open_source(dataclasses.replace(train.config, data_format="tfrecord", data_path=output))
    stored_train, stored_test = shards.split()
    np.testing.assert_array_equal(stored_train.identities(), train.identities())
    np.testing.assert_array_equal(stored_test.identities(), test.identities())
    identities = np.concatenate([b["identity"] for b in stored_test.dataset(16, training=False, repeat=False)])
    assert sorted(identities) == sorted(np.concatenate(
        [b["identity"] for b in test.dataset(16, training=False, repeat=False)]))


def test_training_reduces_the_loss_and_the_export_embeds_like_the_task(splits, tmp_path):
    train, test = splits
    task = _task(train, degrade=False)  # one batch learnt by heart; degradations have their own test
    batch = next(iter(train.dataset(16, training=True, seed=1)))
    step = tf.function(task.train_step)
    first = float(step(batch)["loss/identity"])
    for _ in range(59):  # the whole schedule: the learning rate decays to 0 at train_steps
        last = float(step(batch)["loss/identity"])
    assert last < 0.6 * first, (first, last)  # from ln(4), four training identities

    held_out = list(test.dataset(32, training=False, repeat=False))
    metrics = task.evaluate(held_out)
    assert set(metrics) == {"eval/verification_auc", "eval/tar_at_far_1pct", "eval/rank1_accuracy"}
    # The figures by their definitions, on every held-out face (fewer than eval_examples): the embeddings are the
    # task's (the same ops on the same batches), the cosines float64 as the metrics define them.
    embeddings = np.concatenate([task.embed(b["image"]) for b in held_out]).astype(np.float64)
    identities = np.concatenate([b["identity"] for b in held_out])
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    cosine = unit @ unit.T
    same = identities[:, None] == identities[None, :]
    pairs = np.triu_indices(len(identities), k=1)
    genuine, impostor = cosine[pairs][same[pairs]], cosine[pairs][~same[pairs]]
    # AUC: the chance that a same-identity pair scores above a different-identity one (ties count half); a
    # ratio of pair counts that sklearn sums as trapezoids, each rounding <= 1.1e-16 relative: <= 1e-12 apart.
    wins = (genuine[:, None] > impostor[None, :]).sum() + 0.5 * (genuine[:, None] == impostor[None, :]).sum()
    assert metrics["eval/verification_auc"] == pytest.approx(wins / (len(genuine) * len(impostor)), rel=1e-12)
    # TAR at FAR 1%: a same-identity pair is accepted when at most 1% of the impostor pairs score as high.
    allowed = int(0.01 * len(impostor))
    accepted = [(impostor >= score).sum() <= allowed for score in genuine]
    assert metrics["eval/tar_at_far_1pct"] == np.mean(accepted)  # exact: a count over the same count
    # Rank-1: each face's most similar other face has its identity (every held-out face has a partner here).
    np.fill_diagonal(cosine, -np.inf)
    assert np.all(same.sum(axis=1) > 1)
    assert metrics["eval/rank1_accuracy"] == np.mean(identities[np.argmax(cosine, axis=1)] == identities)
    samples = next(iter(test.dataset(6, training=False, repeat=False)))
    grid = task.sample_grid(samples)
    assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3

    [path] = task.export(str(tmp_path))
    assert os.path.basename(path) == "identity_model.keras"
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, IdentityEmbedder) and loaded.network.fc2 is None
    # Exact: the export copies the trunk's float32 weights bit for bit, and its embedding runs the same ops on
    # the same shapes in this process as the task's network (whose classifier head only follows the embedding).
    np.testing.assert_array_equal(loaded(samples["image"]), task.embed(samples["image"]))


def test_training_sees_faces_degraded_by_step_and_seed(splits):
    train, _ = splits
    task = _task(train)
    images = next(iter(train.dataset(8, training=True)))["image"]
    first = task.degraded(images).numpy()
    np.testing.assert_array_equal(first, task.degraded(images).numpy())
    # Seeded stateless draws (the same bits on any CPU); degradations move pixels by noise of std up to 0.15.
    assert np.mean(np.abs(first - images.numpy())) > 0.01
    assert not np.allclose(first, _task(train, seed=1).degraded(images).numpy())
    task.optimizer.iterations.assign_add(1)
    assert not np.allclose(first, task.degraded(images).numpy())

    clean = _task(train, degrade=False)
    with_degradations = _task(train)
    batch = next(iter(train.dataset(8, training=True)))
    assert float(clean.train_step(batch)["loss/identity"]) != float(with_degradations.train_step(batch)["loss/identity"])


def test_evaluation_subsamples_large_held_out_sets_evenly(splits, monkeypatch):
    train, test = splits
    held_out = list(test.dataset(32, training=False, repeat=False))
    identities = np.concatenate([b["identity"] for b in held_out])
    count = len(identities)
    assert count > 5
    scored = []

    def recording_metrics(embeddings, kept):
        scored.append((np.asarray(embeddings), np.asarray(kept)))
        return identity_metrics(embeddings, kept)

    monkeypatch.setattr(identity_task, "identity_metrics", recording_metrics)
    task = _task(train, eval_examples=5)
    metrics = task.evaluate(held_out)
    # 5 faces evenly spaced over the split's order: the first, the last and every (count - 1) / 4 between
    # (rounded half to even, as numpy rounds; (count - 1) / 4 * k is exact in binary).
    keep = [round(k * (count - 1) / 4) for k in range(5)]
    assert keep[0] == 0 and keep[-1] == count - 1 and len(set(keep)) == 5
    [(embeddings, kept)] = scored
    np.testing.assert_array_equal(kept, identities[keep])
    assert set(kept) == set(identities)  # every held-out identity keeps a share of its faces
    # Exact: the task's own embeddings of the same batches (same ops, same shapes), at those places.
    everyone = np.concatenate([task.embed(b["image"]) for b in held_out])
    np.testing.assert_array_equal(embeddings, everyone[keep])
    expected = identity_metrics(everyone[keep], identities[keep])
    assert metrics == {f"eval/{name}": expected[name] for name in ("verification_auc", "tar_at_far_1pct",
                                                                    "rank1_accuracy") if name in expected}
    # A held-out split no larger than eval_examples is scored whole.
    scored.clear()
    _task(train, eval_examples=count).evaluate(held_out)
    np.testing.assert_array_equal(scored[0][1], identities)


def test_data_without_identities_is_a_config_error(splits):
    train, _ = splits
    with pytest.raises(ConfigError, match="needs identity labels: the training data has no subjects"):
        IdentityTask(label_names=train.label_names, image_size=32, global_batch_size=8, train_steps=1, identities=())
    with pytest.raises(ConfigError, match="multiple of 16"):
        IdentityTask(label_names=train.label_names, image_size=32, global_batch_size=8, train_steps=1,
                     identities=(0, 1), input_size=40)
    with pytest.raises(ConfigError, match="--identity_channels=4,x"):
        IdentityTask(label_names=train.label_names, image_size=32, global_batch_size=8, train_steps=1,
                     identities=(0, 1), channels=("4", "x"))


def _train(*args):
    return subprocess.run([sys.executable, TRAIN, "--noprogress_bar", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_train_script_runs_the_recipe_end_to_end_and_refuses_data_without_subjects(tiny_lab, tmp_path):
    result = _train(
        "--task=identity", "--run_name=tiny", f"--runs_root={tmp_path}", "--data_format=multipie",
        f"--data_path={tiny_lab / 'multipie' / 'manifest.csv'}", "--image_size=32", "--num_lightings=2",
        "--holdout_fraction=0.34", "--batch_size=8", "--train_steps=4", "--log_every=2", "--sample_every=4",
        "--eval_every=4", "--checkpoint_every=4", "--num_samples=6", "--identity_channels=4,8,8,8,8",
        "--identity_blocks=1,1,1,1", "--identity_embedding_dim=8")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = glob.glob(str(tmp_path / "tiny-*"))
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    assert metrics["step"] == 4 and "eval/verification_auc" in json.dumps(metrics)
    assert os.path.exists(os.path.join(run, "identity_model.keras"))
    assert os.listdir(os.path.join(run, "samples")) == ["step_0000004.png"]

    # The same faces as a CSV without a subject column: nothing says which images share an identity.
    manifest = tmp_path / "no_subjects.csv"
    rows = open(tiny_lab / "multipie" / "manifest.csv").read().splitlines()
    manifest.write_text("\n".join(["image,expression"] + [f"{tiny_lab / 'multipie' / r.split(',')[0]},{r.split(',')[4]}"
                                                          for r in rows[1:]]))
    refused = _train("--task=identity", f"--runs_root={tmp_path / 'refused'}", "--data_format=csv",
                     f"--data_path={manifest}", "--label_columns=expression", "--image_size=32",
                     "--holdout_fraction=0.34")
    assert refused.returncode == 1
    assert "error: --task=identity needs identity labels" in refused.stderr and "Traceback" not in refused.stderr
