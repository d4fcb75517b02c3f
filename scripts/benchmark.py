#!/usr/bin/env python
"""Speed measurements, kept out of the unit tests. Prints a markdown table; quotes medians.

  python scripts/benchmark.py --benchmarks=lab,classifier --repeats=7
  python scripts/benchmark.py --suite=all --repeats=5                 # train, infer and input_tf

Which benchmark is running goes to stderr, the table to stdout. Rows of the benchmarks that count
FLOPs (train, infer, gan) add the achieved GFLOP/s and its share of the fp32 peak: the median of
2048x2048 matmuls (keras.ops.matmul, i.e. tf.matmul under TensorFlow) timed first in the same run.
The FLOP conventions (forward convolutions and dense layers; training = 3x forward, the gradient
penalty 9x) are in legan_tf/benchmark/flops.py.

--suite=train|infer|all runs a set of benchmarks instead of --benchmarks: train or infer alone,
or all three of train, infer and input_tf, after which the input pipeline's images/s over
StarGAN training's at --input_size is printed (the input pipeline should deliver at least 5x what
training consumes). At tiny sizes:

  python scripts/benchmark.py --suite=all --suite_sizes=32 --suite_widths=reduced --gan_batch=2 \\
      --input_size=32 --input_batch=8 --repeats=1

train:      training images/s of StarGAN, LEGAN (with its frozen Q and identity network f), Q and the
            depth-guided StarGAN (with its depth network) at each of --suite_sizes, batch --gan_batch,
            the papers' widths or --suite_widths=reduced. The trainer's compiled update functions on a
            fixed batch in memory, two whole D/G cycles (n_critic D updates, one G update) per timed
            call, reported as images per D iteration per second; the networks a recipe loads from
            files (Q, f, the pre-trained depth network) are written with random weights first.
infer:      inference of each recipe's generator (Q: its scoring network) at batch 1 and 32 at each of
            --suite_sizes: images/s and ms per call (inputs on the device, outputs read back), in a
            tf.function (jax.jit under JAX).
input_tf:   the TensorFlow trainer's tf.data pipeline (Source.dataset(training=True)) delivering
            training batches of --input_batch at --input_size from lab faces prepared into shards, images/s.
lab:        face-lab rendering, ms per image, at several sizes (batches of 64).
classifier: attribute-classifier training step on the default strategy, images per second.
serving:    a LEGAN generator exported for TF-Serving (random weights: speed does not depend on them):
            latency p50/p99 of one face and images/s at batch 32, through the in-process gRPC and REST
            server against calling the Keras model directly.
gan:        StarGAN training at each of --gan_widths and --gan_generators (upsampling:output, e.g.
            transpose:image,resize:attention), measured as the train benchmark measures it.
app:        the web page (scripts/app.py): upload to edited photo for a 922x1080 JPEG with one face over
            HTTP, p50/p90/p99, and the server's seconds per stage (read, detect, align, edit, paste, encode),
            p50/p90, with --app_model (default pretrained:stargan-fer2013-64). --app_baseline=<another
            checkout> serves both checkouts, alternates the uploads and gives their ratio.
input:      the JAX path's reader of prepared shards (legan_tf/data/numpy_input.py, no TensorFlow):
            training images/s at --input_size from lab faces prepared into shards.

Both Keras backends run train, infer and gan (KERAS_BACKEND=tensorflow|jax):

  KERAS_BACKEND=jax python scripts/benchmark.py --benchmarks=gan,input

The benchmarks live in legan_tf/benchmark/; this script is their flags (legan_tf/benchmark/options.py).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from legan_tf import hparams  # noqa: E402
from legan_tf.benchmark import options, suite  # noqa: E402
from legan_tf.cli import run_main  # noqa: E402

hparams.define_flags(options.BenchmarkOptions, "", options.__name__)
flags.adopt_module_key_flags(options)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    settings = options.BenchmarkOptions(**hparams.read_flags(options.BenchmarkOptions))
    run_main(suite.run, settings)


if __name__ == "__main__":
    app.run(main)
