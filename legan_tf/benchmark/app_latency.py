"""The web page's speed (docs/app.md): from upload to edited photo for a photo of about one megapixel
with one face, on the page's own HTTP server, with the server's seconds for each stage (reading the
upload, face detection and mesh, alignment, the generator's edit, the paste back at the photo's
resolution, encoding the answer), p50 and p90 of each.

With --app_baseline (another checkout of legan-tf, an earlier commit say), each checkout's
scripts/app.py serves --app_model in a process of its own, the uploads alternate between the two
(ABBA: neither is always the first after the other's turn), and each row gives this checkout's figures,
the baseline's and their ratio: the two are measured on the same machine at the same time, so a shared
or throttled machine slows both alike.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request


def one_megapixel_photo() -> bytes:
    """Grace Hopper's photo from matplotlib (512 x 600) scaled to 922 x 1080 (0.996 megapixels), JPEG 92."""
    from PIL import Image

    from legan_tf.photos import samples

    image = Image.fromarray(samples.grace_hopper()).resize((922, 1080), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def _edit_url(server_url: str) -> str:
    """The edit request of the app at `server_url`: its model's first expression (and first lighting)."""
    with urllib.request.urlopen(f"{server_url}api/model", timeout=60) as reply:
        labels = json.loads(reply.read())["labels"]
    return f"{server_url}api/edit?" + "&".join(f"{attribute}={names[0]}" for attribute, names in labels.items())


def _upload(url: str, photo: bytes):
    """(seconds from upload to answer, the server's seconds per stage) of one edit."""
    start = time.perf_counter()
    request = urllib.request.Request(url, data=photo, method="POST", headers={"Content-Type": "image/jpeg"})
    with urllib.request.urlopen(request, timeout=120) as reply:
        answer = json.loads(reply.read())
    return time.perf_counter() - start, answer["seconds"]


def _percentile(values, fraction: float) -> float:
    ordered = sorted(values)
    return ordered[int(round(fraction * (len(ordered) - 1)))]


def _stages(rounds):
    """{"end to end": [seconds...], stage: [seconds...]} of a list of uploads."""
    found = {"end to end": [seconds for seconds, _ in rounds]}
    for stage in rounds[0][1]:
        found[stage] = [stages[stage] for _, stages in rounds]
    return found


def _ms(values) -> str:
    return f"{1000 * statistics.median(values):.0f} ms / {1000 * _percentile(values, 0.9):.0f} ms"


def bench_app(options):
    if options.app_baseline:
        return _compare(options)
    from legan_tf.benchmark.timing import progress
    from legan_tf.photos.app import AppServer, FaceEditorApp

    app = FaceEditorApp(options.app_model)
    server = AppServer(app, "127.0.0.1", 0, say=progress)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    photo, url = one_megapixel_photo(), _edit_url(server.url)
    _upload(url, photo)  # warm-up: the generator's first call traces it
    rounds = [_upload(url, photo) for _ in range(options.app_requests)]
    server.shutdown()
    server.server_close()
    measured = _stages(rounds)
    totals = measured.pop("end to end")
    rows = [(f"app: upload to edited photo, 922x1080 JPEG, one face, {app.editor.image_size} px model, "
             "p50 / p90 / p99", f"{_ms(totals)} / {1000 * _percentile(totals, 0.99):.0f} ms",
             f"{options.app_requests} requests over HTTP")]
    for stage, values in measured.items():
        rows.append((f"app: {stage} (server's seconds), p50 / p90", _ms(values),
                     f"{1000 * min(values):.0f}..{1000 * max(values):.0f}"))
    return rows


def _serve(checkout: str, model: str) -> subprocess.Popen:
    """`checkout`'s scripts/app.py serving `model` on a free port (its address: `_address`)."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [checkout] + [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path]))
    return subprocess.Popen([sys.executable, os.path.join(checkout, "scripts", "app.py"), f"--model={model}",
                             "--port=0"], cwd=checkout, env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def _address(process: subprocess.Popen, checkout: str) -> str:
    """The page's address once the served checkout has loaded its model."""
    for line in process.stdout:  # "open <address> in a browser (Ctrl-C stops it)"
        if line.startswith("open http"):
            # The rest of its output is read away, so the server never blocks on a full pipe.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return line.split()[1]
    from legan_tf.errors import ConfigError

    raise ConfigError(f"--app_baseline: {checkout}'s scripts/app.py stopped before serving (exit status "
                      f"{process.wait()})")


def _compare(options):
    from legan_tf.benchmark.timing import progress

    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    checkouts = {"this": here, "baseline": os.path.abspath(options.app_baseline)}
    served = {}
    try:
        for name, checkout in checkouts.items():  # both load their model at once
            progress(f"app: serving {options.app_model} from {checkout}")
            served[name] = _serve(checkout, options.app_model)
        urls = {name: _edit_url(_address(process, checkouts[name])) for name, process in served.items()}
        photo = one_megapixel_photo()
        rounds = {name: [] for name in served}
        for url in urls.values():
            _upload(url, photo)  # warm-up: the generator's first call traces it
        for index in range(options.app_requests):
            order = list(urls) if index % 2 == 0 else list(urls)[::-1]
            for name in order:
                rounds[name].append(_upload(urls[name], photo))
    finally:
        for process in served.values():
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    measured = {name: _stages(found) for name, found in rounds.items()}
    rows = []
    for stage, values in measured["this"].items():
        baseline = measured["baseline"].get(stage)
        label = ("app: upload to edited photo, 922x1080 JPEG, one face" if stage == "end to end"
                 else f"app: {stage} (server's seconds)") + ", p50 / p90"
        if baseline is None:
            rows.append((label, _ms(values), "(the baseline does not time it)"))
            continue
        ratio = statistics.median(baseline) / max(statistics.median(values), 1e-9)
        rows.append((label, _ms(values), f"baseline {_ms(baseline)}: {ratio:.2f}x the time"))
    return rows
