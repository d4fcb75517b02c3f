"""The web page's speed (docs/app.md): from upload to edited photo for a photo of about one megapixel
with one face, on the page's own HTTP server, with the server's seconds for each stage (reading the
upload, face detection and mesh, alignment, the generator's edit, the paste back at the photo's
resolution, encoding the answer)."""

from __future__ import annotations

import io
import json
import statistics
import threading
import urllib.request


def one_megapixel_photo() -> bytes:
    """Grace Hopper's photo from matplotlib (512 x 600) scaled to 922 x 1080 (0.996 megapixels), JPEG 92."""
    from PIL import Image

    from legan_tf.photos import samples

    image = Image.fromarray(samples.grace_hopper()).resize((922, 1080), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def bench_app(options):
    from legan_tf.benchmark.timing import progress
    from legan_tf.photos.app import AppServer, FaceEditorApp

    app = FaceEditorApp(options.app_model)
    server = AppServer(app, "127.0.0.1", 0, say=progress)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    photo = one_megapixel_photo()
    target = next(iter(app.editor.label_names.values()))[0]
    attribute = next(iter(app.editor.label_names))
    url = f"{server.url}api/edit?{attribute}={target}"
    if len(app.editor.label_names) > 1:  # a LEGAN model: the first lighting too
        other = list(app.editor.label_names)[1]
        url += f"&{other}={app.editor.label_names[other][0]}"

    def upload():
        import time

        start = time.perf_counter()
        request = urllib.request.Request(url, data=photo, method="POST", headers={"Content-Type": "image/jpeg"})
        with urllib.request.urlopen(request, timeout=120) as reply:
            answer = json.loads(reply.read())
        return time.perf_counter() - start, answer["seconds"]

    upload()  # warm-up: the generator's first call traces it
    rounds = [upload() for _ in range(options.app_requests)]
    server.shutdown()
    server.server_close()
    totals = sorted(seconds for seconds, _ in rounds)
    p50, p99 = statistics.median(totals), totals[int(round(0.99 * (len(totals) - 1)))]
    rows = [(f"app: upload to edited photo, 922x1080 JPEG, one face, {app.editor.image_size} px model, p50 / p99",
             f"{1000 * p50:.0f} ms / {1000 * p99:.0f} ms", f"{options.app_requests} requests over HTTP")]
    for stage in rounds[0][1]:
        values = sorted(stages[stage] for _, stages in rounds)
        rows.append((f"app: {stage} (server's seconds)", f"{1000 * statistics.median(values):.0f} ms",
                     f"{1000 * values[0]:.0f}..{1000 * values[-1]:.0f}"))
    return rows
