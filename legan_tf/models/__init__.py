"""Keras networks, one module per network. Importing this registers them for `keras.models.load_model`."""

from legan_tf.models.classifier import AttributeClassifier
from legan_tf.models.depth import DepthGenerator
from legan_tf.models.lightcnn import IdentityEmbedder, LightCNN29v2
from legan_tf.models.legan import LEGANGenerator
from legan_tf.models.perceptual import FeatureNetwork
from legan_tf.models.quality import QualityModel
from legan_tf.models.stargan import StarGANDiscriminator, StarGANGenerator

__all__ = ["AttributeClassifier", "DepthGenerator", "FeatureNetwork", "IdentityEmbedder", "LEGANGenerator",
           "LightCNN29v2", "QualityModel", "StarGANDiscriminator", "StarGANGenerator"]
