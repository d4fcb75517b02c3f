"""Recipe: train LightCNN-29 v2, the identity network f of LEGAN's identity loss, as a face classifier.

Softmax cross-entropy over the training split's identities (the reference's training objective);
evaluation embeds the held-out faces, whose identities were never seen in training, and measures
verification by cosine (ROC AUC, TAR at FAR 1%) and rank-1 retrieval. The export,
`identity_model.keras`, is an `IdentityEmbedder` without the classifier head: RGB faces in [-1, 1]
in, embeddings out, for `legan_tf.losses.identity_loss`.
"""

import dataclasses
import os

import keras
import numpy as np
from keras import ops

from legan_tf import backend, losses, optimizers, visualize
from legan_tf.errors import ConfigError
from legan_tf.hparams import hparam
from legan_tf.statistics import identity_metrics, nearest_neighbours
from legan_tf.models.lightcnn import (PAPER_BLOCKS, PAPER_CHANNELS, IdentityEmbedder, LightCNN29v2,
                                      faces_to_lightcnn_input, load_identity_embedder, load_lightcnn_weights)
from legan_tf.data.degradations import random_degradations
from legan_tf.gan.base import batch_size
from legan_tf.tasks import base, register

# Sample grid: this many held-out faces, each with its nearest others in the sample batch.
GRID_QUERIES = 8
GRID_NEIGHBOURS = 5


@dataclasses.dataclass(frozen=True)
class IdentityHyperparameters:
    channels: tuple[int, ...] = hparam(PAPER_CHANNELS, "LightCNN-29 v2 widths: outputs of conv1 and group1..group4 "
                                       "(paper: 48,96,192,128,128).")
    blocks: tuple[int, ...] = hparam(PAPER_BLOCKS, "Residual blocks in block1..block4 (paper: 1,2,3,4).")
    embedding_dim: int = hparam(256, "Width of the embedding, LightCNN's fc (paper: 256).", lower_bound=1)
    input_size: int = hparam(0, "Network input size, a multiple of 16; faces are resized to it (paper: 128). "
                             "0: --image_size.", lower_bound=0)
    dropout: float = hparam(0.5, "Dropout on the embedding before the classifier, in training (paper: 0.5).",
                            lower_bound=0.0, upper_bound=1.0)
    weights: str = hparam("", "Start from these weights instead of a random init: an .npz of the official LightCNN-29 "
                          "v2 (tools/convert_lightcnn.py; paper widths and --identity_input_size=128) or an "
                          "identity_model.keras of an earlier run. The classifier head always starts afresh.")
    degrade: bool = hparam(True, "Train on randomly degraded faces (blur, sub-pixel shift, contrast, colour noise and "
                           "blotches; legan_tf.data.degradations). An f trained on clean lab renders reads a slight "
                           "blur as another person, so L_id could not tell a generator's faithful output from a new "
                           "face.")
    eval_examples: int = hparam(4000, "Held-out faces for verification and retrieval (every pair among them is "
                                "scored); larger held-out splits are subsampled evenly.", lower_bound=2)


@register
class IdentityTask(base.Task):
    name = "identity"
    Hyperparameters = IdentityHyperparameters
    default_learning_rate = 3e-4

    def __init__(self, label_names, image_size, global_batch_size, train_steps, learning_rate=None, seed=0,
                 identities=(), **hyperparameters):
        super().__init__(label_names, image_size, global_batch_size, train_steps, learning_rate, seed,
                         **hyperparameters)
        self.identities = np.asarray(sorted(int(i) for i in identities), np.int64)
        if len(self.identities) < 2:
            raise ConfigError(
                "--task=identity needs identity labels: the training data has "
                f"{'no subjects' if len(self.identities) == 0 else 'a single subject'}. Use data grouped by "
                "subject (multipie, or csv/rgbd with a `subject` column; TFRecord shards written from such data by "
                "this version of prepare_data), with at least two training subjects.")
        hp = self.hp
        self.weights_path = hp.weights
        self.eval_examples = hp.eval_examples
        self.degrade = hp.degrade
        self.model_args = dict(input_size=hp.input_size or image_size, channels=hp.channels, num_blocks=hp.blocks,
                               embedding_dim=hp.embedding_dim, dropout=hp.dropout)
        try:
            LightCNN29v2(**self.model_args)  # validates the sizes before training starts
        except ValueError as error:
            raise ConfigError(f"LightCNN-29 v2 cannot be built from these flags: {error}") from None
        if hp.weights and not os.path.isfile(hp.weights):
            raise ConfigError(f"--identity_weights={hp.weights}: no such file.")

    @property
    def num_classes(self):
        return len(self.identities)

    def build(self):
        size = self.model_args["input_size"]
        self.network = LightCNN29v2(**self.model_args, num_classes=self.num_classes, name="lightcnn")
        self.network(ops.zeros((1, size, size, 1)))
        if self.weights_path:
            self._load_initial_weights()
        # Dataset identity ids -> classifier rows; held-out ids never reach train_step.
        table = np.full(int(self.identities.max()) + 1, -1, np.int32)
        table[self.identities] = np.arange(self.num_classes, dtype=np.int32)
        self.class_of_identity = ops.convert_to_tensor(table)
        schedule = keras.optimizers.schedules.PolynomialDecay(self.learning_rate, self.train_steps, 0.0)
        self.optimizer = optimizers.adam(schedule)
        self.optimizer.build(self.network.trainable_variables)

    def _load_initial_weights(self):
        path = self.weights_path
        if path.endswith(".npz"):
            load_lightcnn_weights(self.network, path, include_classifier=False)
            return
        source = load_identity_embedder(path, trainable=True).network
        mine = self.network
        keys = ("input_size", "channels", "num_blocks", "embedding_dim")
        if any(getattr(source, key) != getattr(mine, key) for key in keys):
            raise ConfigError(f"--identity_weights={path} holds a LightCNN29v2 with "
                              + ", ".join(f"{key}={getattr(source, key)}" for key in keys)
                              + "; the flags build " + ", ".join(f"{key}={getattr(mine, key)}" for key in keys) + ".")
        for from_layer, to_layer in zip(source.trunk_layers(), mine.trunk_layers()):
            to_layer.set_weights(from_layer.get_weights())

    def checkpoint_items(self):
        return {"identity_network": self.network, "identity_optimizer": self.optimizer}

    def _network_input(self, images):
        return faces_to_lightcnn_input(images, self.model_args["input_size"])

    def degraded(self, images):
        """The step's random degradations, keyed by (seed, step) and the example's place in the global
        batch, so a resumed run repeats them and a run split over replicas degrades each face as one
        device would."""
        count = batch_size(images)
        return random_degradations(images, (self.seed, self.optimizer.iterations),
                                   offset=backend.replica_index() * count, total=self.global_batch_size)

    def train_step(self, batch):
        images = self.degraded(batch["image"]) if self.degrade else batch["image"]
        images = self._network_input(images)
        classes = ops.take(self.class_of_identity, ops.cast(batch["identity"], "int32"))

        def loss_and_metrics():
            _, logits = self.network(images, training=True)
            per_example = losses.classification_loss(logits, classes)
            # Scaled by the global batch so gradients summed over replicas equal one big batch's.
            loss = ops.sum(per_example) / self.global_batch_size
            predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
            return loss, {"loss/identity": ops.mean(per_example),
                          "accuracy/identity": ops.mean(ops.cast(predicted == classes, "float32"))}

        return backend.apply_gradients(self.optimizer, self.network.trainable_variables, loss_and_metrics)

    def embed(self, images):
        """(B, H, W, 3) faces in [-1, 1] -> (B, embedding_dim) numpy embeddings."""
        embedding, _ = self.network(self._network_input(images), training=False)
        return ops.convert_to_numpy(embedding)

    def evaluate(self, dataset):
        embeddings, identities = [], []
        for batch in dataset:
            embeddings.append(self.embed(batch["image"]))
            identities.append(np.asarray(batch["identity"]))
        if not embeddings:
            raise ValueError("evaluation data is empty")
        embeddings, identities = np.concatenate(embeddings), np.concatenate(identities)
        if len(identities) > self.eval_examples:
            # Evenly spaced over the split's order, so every identity keeps a share of its faces.
            keep = np.linspace(0, len(identities) - 1, self.eval_examples).round().astype(int)
            embeddings, identities = embeddings[keep], identities[keep]
        result = identity_metrics(embeddings, identities)
        names = ("verification_auc", "tar_at_far_1pct", "rank1_accuracy")
        return {f"eval/{name}": result[name] for name in names if name in result}

    def sample_grid(self, batch):
        """Rows: a held-out face, then its nearest other faces of the batch, with their cosine;
        green when the neighbour is the same identity."""
        images = ops.convert_to_numpy(batch["image"])
        identities = np.asarray(batch["identity"])
        neighbours, cosines = nearest_neighbours(self.embed(images), GRID_NEIGHBOURS)
        pixels = visualize.to_uint8(images)
        cells, captions, colours = [], [], []
        for query in range(min(GRID_QUERIES, len(images))):
            cells.append(pixels[query])
            captions.append(f"id {identities[query]}")
            colours.append("black")
            for column in range(GRID_NEIGHBOURS):
                if column < neighbours.shape[1]:
                    other = neighbours[query, column]
                    cells.append(pixels[other])
                    captions.append(f"cos {cosines[query, column]:.2f}")
                    colours.append("green" if identities[other] == identities[query] else "red")
                else:  # a batch smaller than the grid: blank cells keep the rows aligned
                    cells.append(np.full_like(pixels[query], 255))
                    captions.append("")
                    colours.append("black")
        return visualize.labelled_grid(np.stack(cells), captions, colours, columns=GRID_NEIGHBOURS + 1)

    def exported_networks(self):
        """identity_model.keras: `keras.models.load_model(path)(rgb_faces_in_minus1_1)` gives embeddings."""
        embedder = IdentityEmbedder(self.network.without_classifier(), name="identity_embedder")
        embedder(ops.zeros((1, self.image_size, self.image_size, 3)))
        return {"identity_model": embedder}
