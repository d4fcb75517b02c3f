"""Shared fixtures of the evaluation tests: the face lab as a lookup table, a perfect classifier and translator."""

import numpy as np
import pytest

from legan_tf.data.synthetic.render import FaceLab
from legan_tf.evaluation.translation_metrics import to_model_images

HELD_OUT = (100000, 100001)
NUM_FACES = 24


def pixel_key(image):
    return np.round((np.asarray(image) + 1.0) * 127.5).astype(np.uint8).tobytes()


class LookupLab:
    """Every render of the held-out identities, keyed by its pixels: who and what each image shows."""

    def __init__(self, lab):
        self.lab = lab
        grid = lab.render_grid(list(HELD_OUT))
        images = to_model_images(grid["rgb"], lab.image_size)
        self.labels = {pixel_key(image): (int(i), int(e), int(l))
                       for image, i, e, l in zip(images, grid["identity"], grid["expression"], grid["lighting"])}

    def classifier(self, confused_identity=None):
        """A classifier reading labels off the table; on `confused_identity` it names the next expression."""
        def classify(images):
            logits = {"expression": np.zeros((len(images), self.lab.num_expressions)),
                      "lighting": np.zeros((len(images), self.lab.num_lightings))}
            for row, image in enumerate(images):
                identity, expression, lighting = self.labels[pixel_key(image)]
                if identity == confused_identity:
                    expression = (expression + 1) % self.lab.num_expressions
                logits["expression"][row, expression] = 1.0
                logits["lighting"][row, lighting] = 1.0
            return logits
        return classify

    def oracle(self, images, targets):
        """The perfect translator: the exact render of each input's identity with the target attributes."""
        identity = [self.labels[pixel_key(image)][0] for image in images]
        sources = [self.labels[pixel_key(image)] for image in images]
        expression = targets.get("expression", [source[1] for source in sources])
        lighting = targets.get("lighting", [source[2] for source in sources])
        rgb = self.lab.render(np.array(identity), np.asarray(expression), np.asarray(lighting))["rgb"]
        return to_model_images(rgb, self.lab.image_size)


@pytest.fixture(scope="module")
def lookup():
    return LookupLab(FaceLab(image_size=32, num_lightings=4))


def save_tiny_generator(run_dir, flag_lines: str):
    """An untrained 32 px StarGAN generator for the lab's 6 expressions x 4 lights, saved as run_dir's
    generator.keras, beside a flags.txt of `flag_lines`."""
    from legan_tf.models.stargan import StarGANGenerator

    generator = StarGANGenerator(image_size=32, num_labels=10, base_filters=4, num_residual_blocks=1)
    generator((np.zeros((1, 32, 32, 3), np.float32), np.zeros((1, 10), np.float32)))
    generator.save(str(run_dir / "generator.keras"))
    (run_dir / "flags.txt").write_text(flag_lines)
    return generator


def save_tiny_identity_model(path, input_size: int) -> str:
    """An untrained identity network f (LightCNN-29 v2 at tiny widths, embedding 8) saved as an
    identity_model.keras at `path`, as --task=identity exports one."""
    from legan_tf.models.lightcnn import IdentityEmbedder, LightCNN29v2

    embedder = IdentityEmbedder(LightCNN29v2(input_size=input_size, channels=(4, 8, 8, 8, 8), num_blocks=(1, 1, 1, 1),
                                             embedding_dim=8), name="identity_embedder")
    embedder.build((None, input_size, input_size, 3))
    embedder.save(str(path))
    return str(path)
