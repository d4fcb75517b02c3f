#!/usr/bin/env python
r"""Edits, scores or classifies faces through TF-Serving (or serving/server.py), over gRPC or REST.

  python serving/client.py --server=localhost:8500 --model=legan --image=face.jpg --expression=smile \
      --lighting=07 --output=edited.png
  python serving/client.py --server=localhost:8500 --model=quality --image=a.jpg,b.jpg
  python serving/client.py --protocol=rest --server=localhost:8501 --model=classifier --image=face.jpg
  python serving/client.py --server=localhost:8500 --model=legan --describe

The library behind it is legan_tf.serving.client (GrpcClient, RestClient, edit_faces, score_faces).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

from absl import app, flags  # noqa: E402

flags.DEFINE_string("server", "localhost:8500", "host:port of the server (gRPC 8500, REST 8501 by default).")
flags.DEFINE_enum("protocol", "grpc", ["grpc", "rest"], "gRPC PredictionService or the REST JSON API.")
flags.DEFINE_string("model", None, "Model name in the serving directory (legan, stargan, quality, classifier, identity).")
flags.DEFINE_list("image", [], "Face image file(s), JPEG or PNG, any size: send aligned square crops.")
flags.DEFINE_string("expression", None, "Target expression name (generators).")
flags.DEFINE_string("lighting", None, "Target lighting name (generators).")
flags.DEFINE_string("output", None, "Where to write the edited face (PNG); with several images, <stem>_<n>.png.")
flags.DEFINE_string("signature", "serving_default", "Signature to call.")
flags.DEFINE_integer("version", None, "Model version (default: the latest the server has).")
flags.DEFINE_float("timeout", 60.0, "Seconds to wait for an answer.")
flags.DEFINE_bool("describe", False, "Print the model's signatures (inputs and outputs) and exit.")
flags.mark_flag_as_required("model")
FLAGS = flags.FLAGS


def fail(message):
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def output_paths(count):
    if count == 1:
        return [FLAGS.output]
    stem, extension = os.path.splitext(FLAGS.output)
    return [f"{stem}_{index}{extension or '.png'}" for index in range(count)]


def summarise(outputs, index):
    parts = []
    for name, value in sorted(outputs.items()):
        row = value[index]
        if name.endswith("_probabilities"):
            continue
        if isinstance(row, bytes):
            parts.append(f"{name} {row.decode('utf-8', 'replace')}")
        elif getattr(row, "ndim", 0) == 0:
            parts.append(f"{name} {float(row):.3f}")
        else:
            parts.append(f"{name} [{', '.join(f'{x:.3f}' for x in row[:4])}{', ...' if len(row) > 4 else ''}]")
        probabilities = outputs.get(f"{name}_probabilities")
        if probabilities is not None:
            parts[-1] += f" (p={float(probabilities[index].max()):.2f})"
    return ", ".join(parts)


def run():
    from legan_tf.serving.client import ServingError, make_client

    client = make_client(FLAGS.server, FLAGS.protocol, FLAGS.timeout)
    try:
        if FLAGS.describe:
            print(json.dumps(client.signatures(FLAGS.model, FLAGS.version), indent=2))
            return
        if not FLAGS.image:
            fail("give --image=face.jpg (or several, comma-separated)")
        images = []
        for path in FLAGS.image:
            try:
                with open(path, "rb") as handle:
                    images.append(handle.read())
            except OSError as error:
                fail(f"--image={path}: {error.strerror or error}")
        inputs = {"images_bytes": images}
        for attribute in ("expression", "lighting"):
            if FLAGS[attribute].value is not None:
                inputs[attribute] = [FLAGS[attribute].value] * len(images)
        outputs = client.predict(FLAGS.model, inputs, FLAGS.signature, FLAGS.version)
    except ServingError as error:
        hint = " (a generator needs --expression and/or --lighting; --describe lists its inputs)" \
            if error.code == "INVALID_ARGUMENT" and "missing input" in error.message else ""
        fail(f"{error}{hint}")
    finally:
        client.close()
    if "images_bytes" in outputs:
        if not FLAGS.output:
            fail("the model returns images: give --output=edited.png")
        for path, source, png in zip(output_paths(len(images)), FLAGS.image, outputs["images_bytes"]):
            with open(path, "wb") as handle:
                handle.write(png)
            print(f"{source} -> {path}")
        return
    for index, source in enumerate(FLAGS.image):
        print(f"{source}: {summarise(outputs, index)}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    run()


if __name__ == "__main__":
    app.run(main)
