#!/usr/bin/env python
"""A local web page that edits the faces of a photo (docs/app.md).

  python scripts/app.py --model=pretrained:stargan-fer2013-64       # then open http://127.0.0.1:7860/
  legan-tf app --model=runs/stargan-fer2013-cpu-<stamp>

Upload a photo or pick a packaged one, choose the target expression (and lighting, for a LEGAN model),
and get the edited photo beside the original, with a download link. Ctrl-C stops it.
"""

import os
import signal

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.cli import run_main  # noqa: E402
from legan_tf.photos import faces  # noqa: E402

flags.DEFINE_string(
    "model", "pretrained:stargan-fer2013-64",
    "The generator: a shipped model (pretrained:<name>), a training run directory, a generator .keras file with "
    "a labels.json beside it, a scripts/export.py export, or a TF-Serving address host:port/<model> (gRPC).")
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0: every interface; there is no login).")
flags.DEFINE_integer("port", 7860, "Port to listen on (0: a free one).", lower_bound=0, upper_bound=65535)
flags.DEFINE_bool("grey_model", False, "The model was trained on grey faces (as edit_photo.py's --grey_model); "
                  "implied for a generator with a one-channel colour map and for shipped grey models.")
flags.DEFINE_enum("detector", "auto", faces.DETECTORS, "MediaPipe face detector (as edit_photo.py's).")
flags.DEFINE_integer("max_upload_mb", 20, "Largest upload the page takes, in MiB.", lower_bound=1)
FLAGS = flags.FLAGS


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from legan_tf.photos import app as face_app

    signal.signal(signal.SIGTERM, _interrupt)  # stops as Ctrl-C does
    run_main(face_app.serve, FLAGS.model, FLAGS.host, FLAGS.port, grey_model=FLAGS.grey_model,
             detector=FLAGS.detector, max_upload_bytes=FLAGS.max_upload_mb * 2 ** 20)


if __name__ == "__main__":
    app.run(main)
