"""legan-tf: controllable face synthesis (LEGAN and StarGAN with 3D dense geometry guidance).

`import legan_tf` registers every network with Keras, so `keras.models.load_model("x.keras")`
works on the project's saved models without custom_objects.
"""

import os

# TensorFlow's C++ start-up notices (oneDNN, CUDA drivers, CPU features) off unless asked for: set before
# Keras imports TensorFlow below; a value already set is kept.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from legan_tf import models  # noqa: E402,F401  (registration side effect)
