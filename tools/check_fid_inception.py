#!/usr/bin/env python
"""Checks the Keras FID Inception with the real converted weights against PyTorch's features of the same images.

  python tools/check_fid_inception.py                        # the test fixture's four faces
  python tools/check_fid_inception.py --reference=fer50.npz --time_batch=50
  python tools/check_fid_inception.py --fid_folders=real_faces/,generated_faces/

--reference is tests/fixtures/fid_inception.npz (its `real_*` features, made with the real weights by
tests/fixtures/make_fid_inception_fixture.py) or an .npz written where torch is installed by
`python tools/fid_inception_torch.py --mode=features --folders=<folder> --output=<.npz>` (images and
TorchScript features). The images go through the metrics' extractor (8-bit levels, grey to three
channels, the network's own resize and scaling) and the features are compared: maximum absolute
difference, the same relative to the largest reference feature, and the L2 norm of the difference
relative to the reference's; the check fails (exit 1) above 1e-4 of the norm (the bound argued in
tests/evaluation/metrics/test_fid_inception.py).

--time_batch=N times the network on batches of N images (after one warm-up batch). --fid_folders
computes FID between two folders with the Keras network, the figure that
`tools/fid_inception_torch.py --mode=fid` computes with PyTorch.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.errors import ConfigError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "fid_inception.npz")
RELATIVE_BOUND = 1e-4

flags.DEFINE_string("weights", "fid2015", "The converted FID Inception: 'fid2015' (weights/fid_inception_2015.npz) "
                    "or a path.")
flags.DEFINE_string("reference", FIXTURE, "Images and PyTorch's features of them (see the docstring).")
flags.DEFINE_integer("time_batch", 0, "Time the network on batches of this many images (0: no timing).",
                     lower_bound=0)
flags.DEFINE_integer("time_repeats", 3, "Timed batches.", lower_bound=1)
flags.DEFINE_list("fid_folders", [], "Two image folders: FID between them with the Keras network.")
flags.DEFINE_integer("limit", 0, "--fid_folders: the first N images of each, in sorted path order (0: all).",
                     lower_bound=0)
flags.DEFINE_integer("threads", 2, "CPU threads TensorFlow may use.", lower_bound=1)

FLAGS = flags.FLAGS


def reference_sets(path):
    """[(label, uint8 images, features)] of a reference .npz."""
    import numpy as np

    if not os.path.isfile(path):
        raise ConfigError(f"{path}: reference file not found.")
    with np.load(path, allow_pickle=False) as data:
        contents = {key: data[key] for key in data.files}
    if "images" in contents and "features" in contents:
        protocol = str(contents.get("_protocol", "tf2015"))
        return [(f"{len(contents['images'])} images, {protocol}", contents["images"], contents["features"], protocol)]
    sets = []
    for key in sorted(contents):
        if key.startswith("real_"):
            set_name, protocol = key[len("real_"):].split("_", 1)
            sets.append((f"{set_name} {contents[set_name].shape[1:3]}, {protocol}", contents[set_name],
                         contents[key], protocol))
    if not sets:
        raise ConfigError(f"{path}: holds neither images and features nor the fixture's real_* features.")
    return sets


def read_folder(folder, limit):
    import glob

    import numpy as np
    from PIL import Image

    paths = sorted(path for path in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
                   if path.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".webp")))[:limit or None]
    if not paths:
        raise ConfigError(f"{folder}: holds no images.")
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGB"), np.float32) / 127.5 - 1.0)
    return images


def check():
    import numpy as np
    import tensorflow as tf

    from legan_tf.evaluation.metrics import features

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    failed = False
    if FLAGS.reference:
        for label, images, expected, protocol in reference_sets(FLAGS.reference):
            extractor = features.inception_features(FLAGS.weights, "--weights", fid_protocol=protocol)
            got = extractor(images.astype(np.float32) / 127.5 - 1.0)
            difference = np.abs(got - expected)
            relative = float(np.linalg.norm(got - expected) / np.linalg.norm(expected))
            failed |= relative > RELATIVE_BOUND
            print(f"{label}: max |keras - torch| {difference.max():.3g} (features up to {np.abs(expected).max():.3g}; "
                  f"{difference.max() / np.abs(expected).max():.3g} of it), |difference| / |torch| {relative:.3g}"
                  + ("  FAILS" if relative > RELATIVE_BOUND else ""))
    extractor = features.inception_features(FLAGS.weights, "--weights")
    if FLAGS.time_batch:
        batch = np.random.default_rng(0).uniform(-1, 1, (FLAGS.time_batch, 64, 64, 3)).astype(np.float32)
        extractor.network(batch)  # warm-up: traces and allocates
        start = time.perf_counter()
        for _ in range(FLAGS.time_repeats):
            extractor.network(batch).numpy()
        seconds = (time.perf_counter() - start) / FLAGS.time_repeats
        print(f"throughput: {FLAGS.time_batch / seconds:.1f} images/s ({seconds:.2f} s per batch of {FLAGS.time_batch} "
              f"64 px images, {FLAGS.threads} threads)")
    if FLAGS.fid_folders:
        if len(FLAGS.fid_folders) != 2:
            raise ConfigError("--fid_folders needs two folders")
        from legan_tf.evaluation import metrics

        fid = metrics.get("fid")(extractor=extractor)
        for key, folder in zip(("reals", "outputs"), FLAGS.fid_folders):
            images = read_folder(folder, FLAGS.limit)
            start = 0
            while start < len(images):  # runs of one size, up to 50 images, in order
                end = start + 1
                while end < len(images) and end - start < 50 and images[end].shape == images[start].shape:
                    end += 1
                fid.update(**{key: np.stack(images[start:end])})
                start = end
        result = fid.result()
        print(f"FID {result.values['fid']:.4f} (Keras, {result.protocol['num_reals']} and "
              f"{result.protocol['num_outputs']} images)" + "".join(f"\nnote: {note}" for note in result.notes))
    return failed


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if run_main(check):
        raise SystemExit(1)


if __name__ == "__main__":
    app.run(main)
