#!/usr/bin/env python
r"""Serves an exported model directory over gRPC (:8500) and REST (:8501), as TF-Serving would.

  python serving/server.py --model_dir=serving/models
  python serving/server.py --model_dir=pretrained:stargan-fer2013-64   # a model that ships with the package

A stand-in for `tensorflow/serving` (which cannot be installed on every machine): the same protos,
endpoints and status codes, so serving/client.py works unchanged against either. For production,
run the real server on the same folder (docs/serving.md):

  docker run --rm -p 8500:8500 -p 8501:8501 -v "$PWD/serving/models:/models" tensorflow/serving \
      --model_config_file=/models/models.config --enable_batching --batching_parameters_file=/models/batching.config
"""

import os
import shutil
import signal
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

flags.DEFINE_string("model_dir", "serving/models",
                    "The serving directory scripts/export.py wrote, or pretrained:<name>: a model that ships with the "
                    "package, exported at start into a temporary folder (removed at exit) and served as <name>.")
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (0.0.0.0: every interface, as TF-Serving does).")
flags.DEFINE_integer("grpc_port", 8500, "gRPC port (TF-Serving's default 8500); -1 turns gRPC off.", lower_bound=-1)
flags.DEFINE_integer("rest_port", 8501, "REST port (TF-Serving's default 8501); -1 turns REST off.", lower_bound=-1)
flags.DEFINE_integer("workers", 4, "Requests handled at once.", lower_bound=1)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from legan_tf import pretrained
    from legan_tf.errors import ConfigError

    # SIGTERM (docker stop, kill) stops the server as Ctrl-C does, so a temporary export is removed.
    signal.signal(signal.SIGTERM, _interrupt)
    if pretrained.is_pretrained(FLAGS.model_dir):
        from legan_tf.serving.export import export_pretrained

        folder = tempfile.mkdtemp(prefix="legan-tf-serving-")
        try:
            export_pretrained(FLAGS.model_dir, folder)
        except ConfigError as error:
            shutil.rmtree(folder, ignore_errors=True)
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)
        print(f"exported {FLAGS.model_dir} into {folder} (removed at exit)", flush=True)
        try:
            serve(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        serve(FLAGS.model_dir)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(model_dir):
    from legan_tf.serving.server import Server

    try:
        server = Server(model_dir, None if FLAGS.grpc_port < 0 else FLAGS.grpc_port,
                        None if FLAGS.rest_port < 0 else FLAGS.rest_port, FLAGS.host, FLAGS.workers)
    except FileNotFoundError as error:
        print(f"error: {error}; export a run first: python scripts/export.py --run_dir=runs/... "
              f"--serving_dir={model_dir}", file=sys.stderr)
        sys.exit(1)
    names = server.repository.names()
    if not names:
        print(f"error: {model_dir} holds no exported model (no <name>/<version>/ folder)", file=sys.stderr)
        sys.exit(1)
    for name in names:  # load now: a broken export fails here, not at the first request
        try:
            server.repository.get(name)
        except Exception as error:  # noqa: BLE001 (any load failure is reported the same way)
            print(f"error: cannot load {os.path.join(model_dir, name)}: {str(error).strip().splitlines()[0]}",
                  file=sys.stderr)
            sys.exit(1)
    try:
        grpc_port, rest_port = server.start()
    except OSError as error:
        print(f"error: cannot listen on {FLAGS.host} ({error}); is another server using the port?", file=sys.stderr)
        sys.exit(1)
    for name in names:
        print(f"model {name}: version {server.repository.resolve(name)[0]} (the latest) "
              f"from {os.path.join(model_dir, name)}")
    print(f"serving gRPC on {FLAGS.host}:{grpc_port}, REST on http://{FLAGS.host}:{rest_port}; Ctrl-C stops",
          flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    app.run(main)
