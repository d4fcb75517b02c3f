"""The GAN models of the recipes: `base.ConditionalGAN` (the shared D and G updates), StarGAN, LEGAN, and
the depth-guided StarGAN's two models (`depth`: the depth network's pre-training and the end-to-end GAN).

Importing this registers the models for `keras.models.load_model`.
"""

from legan_tf.gan.base import ConditionalGAN, GANHyperparameters
from legan_tf.gan.depth import DepthGuidedStarGAN, DepthNetworkGAN
from legan_tf.gan.legan import LEGAN
from legan_tf.gan.stargan import StarGAN

__all__ = ["ConditionalGAN", "DepthGuidedStarGAN", "DepthNetworkGAN", "GANHyperparameters", "LEGAN", "StarGAN"]
