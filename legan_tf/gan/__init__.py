"""The GAN models of the recipes: `base.ConditionalGAN` (the shared D and G updates), StarGAN and LEGAN.

Importing this registers the models for `keras.models.load_model`.
"""

from legan_tf.gan.base import ConditionalGAN, GANHyperparameters
from legan_tf.gan.legan import LEGAN
from legan_tf.gan.stargan import StarGAN

__all__ = ["ConditionalGAN", "GANHyperparameters", "LEGAN", "StarGAN"]
