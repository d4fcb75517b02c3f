"""`legan-tf app` (scripts/app.py): a local web page that edits the faces of a photo.

A person uploads a photo (or picks one of the photos that ship with the installed packages), sees the
faces found, picks the target expression (and lighting, for a model that has it; ticks the binary attributes
the faces should have, for a multi-label model such as CelebA's), and gets the edited
photo beside the original with a download link. The model is anything `edit_photo.load_editor` opens:
`pretrained:<name>`, a run directory, a generator `.keras` file with its labels.json, an export, or a
TF-Serving address (`host:port/model`).

The server is the standard library's (as the rating study's is): one page (app.html) and a small JSON
API, so the page needs nothing but the package. Requests:

    GET  /                 the page
    GET  /api/model        the model: its source, label names (and which groups are multi-label), the
                           packaged photos, the upload limit
    GET  /sample/<name>    a packaged photo (JPEG)
    POST /api/edit?expression=<name>[&lighting=<name>][&sample=<name>]
    POST /api/edit?attributes=<names, comma-separated; empty for none>[&sample=<name>]   (multi-label)
                           the photo's bytes as the body (none with `sample`); answers JSON: the faces
                           found, the original with their boxes, the edited photo (JPEG data URLs) and
                           the seconds of each stage; or {"error": message} with 400 (not an image, an
                           unknown name), 413 (too large) or 422 (no face to edit)

Edits run one at a time (a lock around the model); every request's failure is its own: the server
keeps answering.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
import threading
import time
import urllib.parse
from typing import Callable, Dict, Optional

import numpy as np
from PIL import Image, ImageDraw

from legan_tf.errors import ConfigError
from legan_tf.labels import is_multi_label
from legan_tf.local_http import LocalHandler, LocalServer
from legan_tf.photos import edit_photo
from legan_tf.photos import faces as face_tools

PAGE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.html")
MAX_UPLOAD_BYTES = 20 * 2 ** 20
MAX_UPLOAD_PIXELS = 40_000_000
DRAIN_LIMIT = 512 * 2 ** 20   # a refused upload up to this size is read away before the answer
SHOWN_SIDE = 1600      # the page's pictures are at most this large; the download is the full photo
JPEG_QUALITY = 92


class BadUpload(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def size_text(count: int) -> str:
    """Bytes as the page says them: 300 KiB, 1.5 MiB, 20 MiB (as app.html's sizeText)."""
    if count < 2 ** 20:
        return f"{count / 1024:.0f} KiB"
    return f"{count / 2 ** 20:.1f} MiB".replace(".0 MiB", " MiB")


def packaged_photos() -> Dict[str, Callable[[], np.ndarray]]:
    """{name: loader} of the face photos shipped by installed packages (matplotlib always; scikit-image's
    astronaut where it is installed)."""
    from legan_tf.photos import samples

    found = {"grace_hopper": samples.grace_hopper}
    try:
        import skimage.data  # noqa: F401
        found = {"astronaut": samples.astronaut, **found}
    except ImportError:
        pass
    return found


def _jpeg(rgb: np.ndarray, max_side: Optional[int] = None) -> bytes:
    image = Image.fromarray(rgb)
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _data_url(data: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _boxed(rgb: np.ndarray, faces) -> np.ndarray:
    """The photo with a box around each face's mesh (line width scaled to the photo)."""
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 300))
    for face in faces:
        x0, y0 = face.points[:, :2].min(0)
        x1, y1 = face.points[:, :2].max(0)
        draw.rectangle([x0, y0, x1, y1], outline=(255, 210, 0), width=width)
    return np.asarray(image)


class FaceEditorApp:
    """The model and the editing, apart from HTTP (so it is tested without a browser)."""

    def __init__(self, model: str, grey_model: bool = False, detector: str = "auto",
                 max_upload_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_UPLOAD_PIXELS):
        self.editor = edit_photo.load_editor(model)
        self.grey_model, self.max_upload_bytes, self.max_pixels = grey_model, max_upload_bytes, max_pixels
        self.finder = face_tools.FaceFinder(detector)
        self.samples = packaged_photos()
        self.lock = threading.Lock()

    def describe(self) -> dict:
        return {"model": self.editor.source, "image_size": self.editor.image_size,
                "labels": {attribute: list(names) for attribute, names in self.editor.label_names.items()},
                # A multi-label group (CelebA's binary attributes) is a set of names to tick, not one to choose.
                "multi_label": [attribute for attribute in self.editor.label_names if is_multi_label(attribute)],
                "samples": list(self.samples), "max_upload_bytes": self.max_upload_bytes}

    def _sample_pixels(self, name: str) -> np.ndarray:
        if name not in self.samples:
            raise BadUpload(404, f"no packaged photo {name!r}; there are {', '.join(self.samples)}")
        return self.samples[name]()

    def sample(self, name: str) -> bytes:
        return _jpeg(self._sample_pixels(name))

    def edit(self, body: bytes, query: Dict[str, str]) -> dict:
        """One edit: the photo's bytes (or a packaged photo named by `sample`) and the target names."""
        started = time.perf_counter()
        try:
            targets = edit_photo.resolve_targets(self.editor.label_names, query.get("expression") or None,
                                                 query.get("lighting") or None, False,
                                                 attributes=query.get("attributes"))  # "": none of them
        except ConfigError as error:
            raise BadUpload(400, str(error).replace("--", "")) from None
        if query.get("sample"):  # an unknown name is a 404 with the known ones
            photo = face_tools.Photo(self._sample_pixels(query["sample"]), None, "RGB", None, None)
            name = query["sample"]
        else:
            photo, name = self._read(body), "the uploaded photo"
        timings: Dict[str, float] = {"read": time.perf_counter() - started}
        with self.lock:
            try:
                edited = edit_photo.edit_faces(self.editor, photo, self.finder, targets, "auto", self.grey_model,
                                               name=name, timings=timings)
            except edit_photo.NoFaceError as error:
                raise BadUpload(422, str(error)) from None
        encode_started = time.perf_counter()
        result = edited.results[0]
        download = _data_url(_jpeg(result))
        # A photo that fits the page is shown as it downloads: the same JPEG.
        shown = download if max(result.shape[:2]) <= SHOWN_SIDE else _data_url(_jpeg(result, SHOWN_SIDE))
        answer = {
            "faces": [face.describe() for face in edited.faces], "skipped": list(edited.skipped),
            "targets": targets[0], "size": [int(photo.rgb.shape[1]), int(photo.rgb.shape[0])],
            "original": _data_url(_jpeg(_boxed(photo.rgb, edited.faces), SHOWN_SIDE)),
            "edited": shown, "download": download,
        }
        timings["encode"] = time.perf_counter() - encode_started
        answer["seconds"] = {stage: round(value, 4) for stage, value in timings.items()}
        answer["seconds"]["total"] = round(time.perf_counter() - started, 4)
        return answer

    def _read(self, body: bytes) -> face_tools.Photo:
        if not body:
            raise BadUpload(400, "no photo was sent: choose a file or a packaged photo")
        # load_photo reads files (EXIF orientation, modes, its size checks); the upload goes through one.
        with tempfile.TemporaryDirectory(prefix="legan-tf-app-") as folder:
            path = os.path.join(folder, "upload")
            with open(path, "wb") as handle:
                handle.write(body)
            try:
                return face_tools.load_photo(path, self.max_pixels)
            except face_tools.PhotoError as error:
                raise BadUpload(400, str(error).replace(path, "the uploaded file")) from None


class _Handler(LocalHandler):
    server_version = "legan-tf-app"
    timeout = 60

    def do_GET(self):  # noqa: N802
        app = self.server.app
        path = urllib.parse.urlsplit(self.path).path
        try:
            if path in ("/", "/index.html"):
                with open(PAGE_FILE, "rb") as handle:
                    self._send(200, handle.read(), "text/html; charset=utf-8")
            elif path == "/api/model":
                self._json(200, app.describe())
            elif path.startswith("/sample/"):
                self._send(200, app.sample(urllib.parse.unquote(path[len("/sample/"):])), "image/jpeg")
            elif path == "/favicon.ico":
                self._send(204, b"", "image/x-icon")
            else:
                self._json(404, {"error": f"no such page: {path}"})
        except BadUpload as error:
            self._json(error.status, {"error": str(error)})

    def _drain(self, length: int) -> None:
        """Reads a refused body away, so the client, still sending, gets the answer rather than a reset;
        one past DRAIN_LIMIT closes the connection instead."""
        if length > DRAIN_LIMIT:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)

    def do_POST(self):  # noqa: N802
        app = self.server.app
        parts = urllib.parse.urlsplit(self.path)
        if parts.path != "/api/edit":
            self._json(404, {"error": f"no such endpoint: {parts.path}"})
            return
        # Blank values kept: `attributes=` asks for a face with none of the binary attributes.
        query = {key: values[-1] for key, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            length = self.headers.get("Content-Length", "0").strip()
            if not length.isdigit():
                raise BadUpload(400, "a Content-Length is required")
            if int(length) > app.max_upload_bytes:
                self._drain(int(length))
                raise BadUpload(413, f"the file is {size_text(int(length))}; the page takes photos up to "
                                     f"{size_text(app.max_upload_bytes)}")
            body = self.rfile.read(int(length))
            self._json(200, app.edit(body, query))
        except BadUpload as error:
            self._json(error.status, {"error": str(error)})
        except ConfigError as error:  # the model refused (a served model's error, say): this request only
            self._json(500, {"error": str(error)})
        except Exception as error:  # noqa: BLE001 (one request fails, the server goes on)
            self.server.say(f"error: {type(error).__name__}: {error}")
            self._json(500, {"error": "internal error: the edit failed (the server goes on)"})


class AppServer(LocalServer):
    def __init__(self, app: FaceEditorApp, host: str = "127.0.0.1", port: int = 7860,
                 say: Callable[[str], None] = print):
        self.app, self.say = app, say
        super().__init__(host, port, _Handler)


def serve(model: str, host: str = "127.0.0.1", port: int = 7860, **options) -> None:
    """scripts/app.py: loads the model, serves the page until Ctrl-C (or SIGTERM)."""
    app = FaceEditorApp(model, **options)
    server = AppServer(app, host, port)
    names = ", ".join(f"{attribute}: {len(values)}" for attribute, values in app.editor.label_names.items())
    print(f"model {app.editor.source} ({app.editor.image_size} px; {names})")
    print(f"open {server.url} in a browser (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
