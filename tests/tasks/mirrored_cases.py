"""The recipes that tests/tasks/test_mirrored_equality.py runs on one device and on two replicas.

A case is `case(GradientRecorder) -> {"networks": [...], "updates": [(name, fn(batch, step), recorder)],
"draws": fn(batch, step) -> {name: int tensor}}` (draws optional), built at tiny widths on 32 px
faces. A new recipe adds its case here. Dropout stays 0: Keras draws dropout masks per replica,
so the same numbers on any layout can only be asked of a recipe without it.
"""

import keras

from legan_tf.gan import LEGAN, DepthGuidedStarGAN, DepthNetworkGAN, StarGAN
from legan_tf.gan.depth import make_depth_discriminator
from legan_tf.models.depth import DepthGenerator
from legan_tf.tasks.classifier import ClassifierTask
from legan_tf.tasks.identity import IdentityTask
from legan_tf.tasks.quality import QualityTask
from tests.tasks.mirrored import GLOBAL_BATCH
from tests.tasks.test_depth_recipes import TinyFeatures
from tests.tasks.test_legan_recipe import _judges

LABEL_NAMES = {"expression": ("a", "b", "c"), "lighting": ("0", "1", "2", "3")}
GAN = dict(image_size=32, label_sizes={"expression": 3, "lighting": 4}, g_filters=4, g_residual_blocks=1, d_filters=4,
           d_downsamples=5, global_batch_size=GLOBAL_BATCH, n_critic=1)


def _gan(model, recorder):
    d, g = recorder("d_recorder"), recorder("g_recorder")
    model.build_all(d, g)
    networks = [model.generator, model.discriminator]
    judges = ("identity_model", "quality_model", "depth_generator", "depth_discriminator", "feature_network")
    networks += [getattr(model, name) for name in judges if getattr(model, name, None) is not None]
    return {"networks": networks, "draws": model.random_targets,
            "updates": [("discriminator", model.discriminator_step, d), ("generator", model.generator_step, g)]}


def stargan(recorder):
    keras.utils.set_random_seed(0)
    return _gan(StarGAN(**GAN), recorder)


def legan(recorder):
    identity, quality = _judges()  # the LEGAN recipe tests' tiny frozen f and Q
    keras.utils.set_random_seed(0)
    # Both judges on: L_id and L_qual flow through frozen networks on every replica.
    return _gan(LEGAN(identity_model=identity, quality_model=quality, lambda_qual=1.0, lambda_id=1.0, **GAN), recorder)


DEPTH = dict(image_size=32, label_sizes={"expression": 3}, global_batch_size=GLOBAL_BATCH, n_critic=1)


def depth_pretrain(recorder):
    keras.utils.set_random_seed(0)
    features = TinyFeatures()
    features(keras.ops.zeros((1, 32, 32, 1)))
    # Perceptual loss and confidence penalty on: every term of the pre-training.
    return _gan(DepthNetworkGAN(feature_network=features, g_filters=4, g_residual_blocks=1, d_filters=4,
                                d_downsamples=3, confidence_beta=0.1, **DEPTH), recorder)


def stargan_depth(recorder):
    keras.utils.set_random_seed(0)
    generator = DepthGenerator(32, "normals", base_filters=4, num_residual_blocks=1)
    discriminator = make_depth_discriminator(32, "normals", 3, 4, 3)
    # Normals (finite differences across the replicas' own examples), the depth terms and G_depth training on.
    return _gan(DepthGuidedStarGAN(depth_generator=generator, depth_discriminator=discriminator, geometry="normals",
                                   depth_weight=0.3, g_filters=4, g_residual_blocks=1, d_filters=4, d_downsamples=3,
                                   **DEPTH), recorder)


def _task(task, network, recorder):
    """A single-network recipe: its optimizer swapped for the recorder after build()."""
    task.build()
    task.optimizer = recorder(f"{task.name}_recorder")
    model = getattr(task, network)
    task.optimizer.build(model.trainable_variables)
    return {"networks": [model], "updates": [(task.name, lambda batch, step: task.train_step(batch), task.optimizer)]}


def classifier(recorder):
    keras.utils.set_random_seed(0)
    return _task(ClassifierTask(LABEL_NAMES, 32, GLOBAL_BATCH, 10, base_filters=4, downsamples=3), "model", recorder)


def quality(recorder):
    keras.utils.set_random_seed(0)
    return _task(QualityTask({}, 32, GLOBAL_BATCH, 10, base_filters=4, downsamples=3, dense_units=8), "model", recorder)


def identity(recorder):
    keras.utils.set_random_seed(0)
    # Degradations on (the default): each face must be degraded as one device would degrade it.
    task = IdentityTask({}, 32, GLOBAL_BATCH, 10, identities=(0, 1, 2, 3), channels=("4", "4", "4", "4", "4"),
                        blocks=("1", "1", "1", "1"), embedding_dim=8, dropout=0.0, degrade=True)
    return _task(task, "network", recorder)


CASES = {"stargan": stargan, "legan": legan, "classifier": classifier, "quality": quality, "identity": identity,
         "depth_pretrain": depth_pretrain, "stargan_depth": stargan_depth}
