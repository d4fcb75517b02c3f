#!/usr/bin/env python
"""A browser rating study of your own faces: people rate them 1-10 on a local page (docs/rating_study.md).

  python scripts/rating_server.py --images=data/my_naturalness/images --output=data/my_study/ratings.csv \\
      --attention_from=data/my_naturalness/ratings.csv --raters_per_image=5 --port=8000

Open the printed URL in a browser; each rater enters a name and rates faces one at a time (buttons or keys
1-9, 0 for 10), in an order of their own, never one face twice. Attention checks (known-clean and known-broken
faces) are mixed in; raters who fail them are reported here and in <output>.raters.csv, and their ratings are
left out. Every rating is appended to <output>.log.csv (fsync'ed) as it is given, and <output> (image,mean,std,
source,n_ratings: --data_format=ratings) is rewritten after each one. Stop with Ctrl-C; run the same command
again to carry on where the study stopped. Exit status 0 after a stop, 1 for bad flags or input.
"""

import os
import signal

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

from legan_tf.naturalness import rating_study  # noqa: E402
from legan_tf.cli import run_main  # noqa: E402

flags.DEFINE_string(
    "images", None,
    "Folder of face images to rate, searched recursively for .png/.jpg/.jpeg (hidden files skipped; unreadable "
    "images are counted and skipped). An image's source (which keeps a photo's variants in one split) is its "
    "folder relative to this one, e.g. the photo folders of scripts/make_naturalness.py's images/.")
flags.DEFINE_string(
    "output", None,
    "The ratings CSV to write (image,mean,std,source,n_ratings; paths relative to its folder). Beside it: "
    "<output>.log.csv (every rating, the study's state; a rerun resumes from it) and <output>.raters.csv.")
flags.DEFINE_integer("port", 8000, "Port to listen on; 0 picks a free one. The URL is printed.", lower_bound=0,
                     upper_bound=65535)
flags.DEFINE_string(
    "host", "127.0.0.1",
    "Address to listen on. The default serves this machine only; 0.0.0.0 lets raters on the LAN in (no login: "
    "anyone who reaches the port can rate; docs/rating_study.md).")
flags.DEFINE_integer(
    "raters_per_image", 5,
    "Target number of raters per image: an image leaves the queue once this many raters in good standing rated "
    "it.", lower_bound=1)
flags.DEFINE_list(
    "attention_clean", [],
    "Known-clean faces for attention checks: folders (recursive), files or quoted glob patterns, comma-separated.")
flags.DEFINE_list(
    "attention_broken", [],
    "Known-broken faces for attention checks: folders (recursive), files or quoted glob patterns, comma-separated.")
flags.DEFINE_string(
    "attention_from", None,
    "A ratings.csv of scripts/make_naturalness.py: its clean rows become known-clean checks, its artifact rows of "
    "severity >= --attention_min_severity known-broken ones (added to --attention_clean/--attention_broken).")
flags.DEFINE_float("attention_min_severity", 0.8,
                   "With --attention_from: the least severity of a known-broken face.", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_integer(
    "attention_every", 10,
    "One attention check after every this many rated images (known-clean and known-broken alternate); 0 = none.",
    lower_bound=0)
flags.DEFINE_string(
    "attention_rule", rating_study.DEFAULT_RULE,
    "When a check passes: 'clean>=X,broken<=Y' (a known-clean face must be rated at least X, a known-broken one "
    "at most Y).")
flags.DEFINE_integer(
    "attention_allowed_failures", 0,
    "A rater who fails more checks than this is excluded: all their ratings are left out of --output (and do not "
    "count towards --raters_per_image), and they are reported.", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seed of each rater's order of the images and checks (a rater's order is a function "
                     "of the seed and their name, so it survives restarts).")
flags.DEFINE_bool("overwrite", False,
                  "Replace an existing --output that has no rating log beside it. A log is never discarded: with "
                  "one, the study resumes from it.")

FLAGS = flags.FLAGS


def _stop(signum, frame):
    raise KeyboardInterrupt


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.images or not FLAGS.output:
        raise app.UsageError("--images and --output are required.")
    # SIGINT too, explicitly: a process started with SIGINT ignored (by a test runner's worker, nohup, some
    # schedulers) inherits that, and Python then installs no Ctrl-C handler of its own.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, _stop)
    run_main(rating_study.serve, FLAGS.images, FLAGS.output, host=FLAGS.host, port=FLAGS.port,
             raters_per_image=FLAGS.raters_per_image, attention_clean=FLAGS.attention_clean,
             attention_broken=FLAGS.attention_broken, attention_from=FLAGS.attention_from,
             attention_every=FLAGS.attention_every, attention_rule=FLAGS.attention_rule,
             allowed_failures=FLAGS.attention_allowed_failures,
             attention_min_severity=FLAGS.attention_min_severity, seed=FLAGS.seed, overwrite=FLAGS.overwrite)


if __name__ == "__main__":
    app.run(main)
