"""Serving speed: a LEGAN generator exported for TF-Serving (random weights: speed does not depend on
them), latency p50/p99 of one face and images/s at batch 32, through the in-process gRPC and REST
server against calling the Keras model directly."""

from __future__ import annotations

import io
import tempfile

from legan_tf.benchmark.timing import percentiles, throughput_row


def _pngs(faces):
    import numpy as np
    from PIL import Image

    encoded = []
    for pixels in np.round((faces + 1) * 127.5).astype(np.uint8):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "PNG")
        encoded.append(buffer.getvalue())
    return encoded


def bench_serving(options):
    import numpy as np
    import tensorflow as tf

    from legan_tf.models.legan import LEGANGenerator
    from legan_tf.serving import export
    from legan_tf.serving.client import GrpcClient, RestClient, edit_faces
    from legan_tf.serving.server import Server

    size, filters = options.serving_size, options.serving_filters
    names = {"expression": tuple(f"e{i}" for i in range(6)), "lighting": tuple(f"{i:02d}" for i in range(20))}
    generator = LEGANGenerator(size, 6, 20, base_filters=filters)
    labels = np.zeros((32, 26), np.float32)
    labels[:, [1, 6 + 7]] = 1
    faces = np.random.default_rng(0).uniform(-1, 1, (32, size, size, 3)).astype(np.float32)
    generator((faces[:1], labels[:1]))
    pngs = _pngs(faces)
    rows = []
    with tempfile.TemporaryDirectory() as root:
        path = export.export_model(generator, "generator", root, "legan", names)
        server = Server(root, grpc_port=0, rest_port=0)
        server.start()
        clients = {"gRPC": GrpcClient(f"127.0.0.1:{server.grpc_port}", timeout=600),
                   "REST": RestClient(f"127.0.0.1:{server.rest_port}", timeout=600)}
        serving_default = tf.saved_model.load(path).signatures["serving_default"]
        compiled = tf.function(lambda x, y: generator((x, y), training=False))
        paths = {
            "Keras model eager, float face in and out":
                lambda n: generator((faces[:n], labels[:n]), training=False).numpy(),
            "Keras model in a tf.function, float face in and out": lambda n: compiled(faces[:n], labels[:n]).numpy(),
            "SavedModel in-process, PNG in and out": lambda n: serving_default(
                images_bytes=tf.constant(pngs[:n]), expression=tf.constant(["e1"] * n),
                lighting=tf.constant(["07"] * n)),
        }
        for protocol, client in clients.items():
            paths[f"{protocol} to the in-process server, PNG in and out"] = (
                lambda n, client=client: edit_faces(client, "legan", pngs[:n], expression="e1", lighting="07"))
        for label, call in paths.items():
            p50, p99 = percentiles(lambda: call(1), options.serving_requests)
            rows.append((f"{label}: 1 face at {size} px, p50 / p99", f"{1000 * p50:.0f} ms / {1000 * p99:.0f} ms",
                         f"{options.serving_requests} requests"))
            rows.append(throughput_row(f"{label}: batch 32", lambda: call(32), max(1, options.repeats // 2), 32,
                                       digits=1))
        server.stop()
    return rows
