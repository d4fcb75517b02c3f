"""Adding a recipe is one module in legan_tf/tasks/ plus one flags file: nothing else is edited.

The toy is a third GAN on the shared base (legan_tf/gan/base.py) with one hyperparameter of its own
and an extra discriminator, the shape of the depth-guided StarGAN: the test proves that the base's
hooks carry such a recipe, and that discovery, flags, --help, flags.txt and checkpoints need no edit.
"""

import glob
import os
import subprocess
import sys
import textwrap
import uuid

import pytest
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from legan_tf.data.synthetic.writer import write_face_lab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TASKS_DIR = os.path.join(REPO, "legan_tf", "tasks")

TOY_MODULE = '''
"""A toy recipe: StarGAN plus a second (patch) critic whose hinge loss D adds with weight lambda_extra."""

import dataclasses

import keras
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from legan_tf.gan.stargan import StarGAN, StarGANHyperparameters
from legan_tf.hparams import hparam
from legan_tf.tasks import register
from legan_tf.tasks.stargan import StarGANTask, TrainingHyperparameters


@dataclasses.dataclass(frozen=True)
class ToyHyperparameters(StarGANHyperparameters):
    lambda_extra: float = hparam(0.5, "Weight of the toy's extra critic in D's loss.", lower_bound=0.0)


class ToyGAN(StarGAN):
    Hyperparameters = ToyHyperparameters

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.extra_critic = keras.Sequential([keras.layers.Conv2D(1, 4, strides=4)], name="extra_critic")

    def extra_discriminators(self):
        return {{"extra_critic": self.extra_critic}}

    def build_networks(self):
        super().build_networks()
        self.extra_critic(tf.zeros((1, self.image_size, self.image_size, 3)))

    def discriminator_loss_weights(self):
        return {{**super().discriminator_loss_weights(), "extra": self.hp.lambda_extra}}

    def discriminator_losses(self, batch, fakes, step):
        terms = super().discriminator_losses(batch, fakes, step)
        real = tf.reduce_mean(tf.nn.relu(1.0 - self.extra_critic(batch["image"])), axis=[1, 2, 3])
        fake = tf.reduce_mean(tf.nn.relu(1.0 + self.extra_critic(fakes)), axis=[1, 2, 3])
        terms["extra"] = real + fake
        return terms


@dataclasses.dataclass(frozen=True)
class ToyRecipe(ToyHyperparameters, TrainingHyperparameters):
    pass


@register
class ToyTask(StarGANTask):
    name = "{name}"
    Hyperparameters = ToyRecipe
    model_class = ToyGAN
'''


@pytest.fixture
def toy_recipe():
    """Writes the toy module into legan_tf/tasks/ for the test's duration (a unique name: nothing is shadowed)."""
    name = f"toy_{uuid.uuid4().hex[:8]}"
    path = os.path.join(TASKS_DIR, f"{name}.py")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(textwrap.dedent(TOY_MODULE.format(name=name)))
    try:
        yield name
    finally:
        os.remove(path)
        for cached in glob.glob(os.path.join(TASKS_DIR, "__pycache__", f"{name}.*")):
            os.remove(cached)


def _run(*arguments):
    return subprocess.run([sys.executable, os.path.join(REPO, "scripts", "train.py"), *arguments],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_a_new_recipe_module_and_flags_file_train_through_train_py(toy_recipe, tmp_path):
    write_face_lab(tmp_path / "lab", image_size=32, num_identities=4, seed=0, num_lightings=4,
                   naturalness_variants=1, rgbd_lightings_per_face=1)
    flagfile = tmp_path / f"{toy_recipe}.flags"
    flagfile.write_text("\n".join([
        f"--task={toy_recipe}", "--data_format=multipie", f"--data_path={tmp_path / 'lab' / 'multipie' / 'manifest.csv'}",
        "--image_size=32", "--num_lightings=4", "--holdout_fraction=0.25", "--batch_size=4", "--train_steps=2",
        f"--runs_root={tmp_path / 'runs'}", "--log_every=1", "--num_samples=4", "--noprogress_bar",
        f"--{toy_recipe}_g_filters=4", f"--{toy_recipe}_g_residual_blocks=1", f"--{toy_recipe}_d_filters=4",
        f"--{toy_recipe}_d_downsamples=5", f"--{toy_recipe}_n_critic=1", f"--{toy_recipe}_lambda_extra=0.25",
    ]) + "\n")

    help_text = _run("--help")
    # (absl's --help exits 1 by design.)
    assert f"--{toy_recipe}_lambda_extra: Weight of the toy's extra critic" in help_text.stdout

    result = _run(f"--flagfile={flagfile}")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = glob.glob(str(tmp_path / "runs" / f"{toy_recipe}-*"))
    assert f"--{toy_recipe}_lambda_extra=0.25" in open(os.path.join(run, "flags.txt")).read()
    # The extra critic is a checkpoint item beside D, saved with its weights, and D's optimizer trains
    # it: its kernel, the only (4, 4, 3, 1) variable of the run, is one object that both the item's
    # weights and d_optimizer's trainable variables reference.
    checkpoint = tf.train.latest_checkpoint(os.path.join(run, "checkpoints"))
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(tf.train.load_checkpoint(checkpoint).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))

    def children(node_id, name=None):
        found = {child.local_name: child.node_id for child in graph.nodes[node_id].children}
        return found if name is None else found[name]

    assert "extra_critic" in children(0)
    [kernel] = [name for name, shape in tf.train.list_variables(checkpoint)
                if shape == [4, 4, 3, 1] and "optimizer" not in name]  # not Adam's moments of it
    assert kernel.startswith("extra_critic/")
    critic_weights = set(children(children(0, "extra_critic")).values())
    trained_by_d = set(children(children(children(0, "d_optimizer"), "_trainable_variables")).values())
    assert children(children(0, "extra_critic"), kernel.split("/")[1]) in critic_weights & trained_by_d
    # Its term reached the trainer's logs at every step, as d/extra beside StarGAN's terms.
    tags = set()
    for events in glob.glob(os.path.join(run, "logs", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(events):
            tags |= {value.tag for value in event.summary.value}
    assert {"d/extra", "d/adversarial", "d/total", "g/reconstruction"} <= tags
    assert os.path.isfile(os.path.join(run, "generator.keras"))
