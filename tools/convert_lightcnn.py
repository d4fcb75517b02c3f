#!/usr/bin/env python
"""Converts the official LightCNN-29 v2 PyTorch checkpoint into an .npz this project loads without torch.

  python tools/convert_lightcnn.py --input=LightCNN_29Layers_V2_checkpoint.pth.tar --output=lightcnn29v2.npz

Run it wherever torch is installed (torch is not a dependency of legan-tf), then use the .npz as
--identity_weights, or load it with `legan_tf.models.lightcnn.load_lightcnn_weights`. The .npz holds
the checkpoint's `state_dict` arrays under their PyTorch names, `module.` prefix included; the
loader maps and transposes them.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.models.lightcnn import torch_checkpoint_to_npz  # noqa: E402

flags.DEFINE_string("input", None,
                    "The official checkpoint (.pth.tar): a dict with a `state_dict`, or a bare state_dict.")
flags.DEFINE_string("output", None, "The .npz to write. Default: the input's name with .npz instead of .pth.tar/.pth.")
flags.DEFINE_bool("allow_pickle", False,
                  "Load with torch.load(weights_only=False), which can run code stored in the file: only for a "
                  "checkpoint you trust that holds objects other than tensors.")

FLAGS = flags.FLAGS


def _default_output(path):
    for suffix in (".pth.tar", ".pth", ".pt", ".tar"):
        if path.endswith(suffix):
            return path[: -len(suffix)] + ".npz"
    return path + ".npz"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.input:
        raise app.UsageError("--input is required (the official .pth.tar).")
    output = FLAGS.output or _default_output(FLAGS.input)
    count = run_main(torch_checkpoint_to_npz, FLAGS.input, output, allow_pickle=FLAGS.allow_pickle)
    print(f"wrote {count} arrays to {output}")


if __name__ == "__main__":
    app.run(main)
