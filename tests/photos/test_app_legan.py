"""The web page with a model that edits lighting as well as expression (a LEGAN): the page shows a lighting
control, the API takes a lighting, an unknown one is a message, and a person picks one in a real browser.

The generator is a small untrained LEGAN saved with its label names: what is checked is the page's handling
of a second label group, not what a trained model draws (tests/photos/test_app.py covers that)."""

import json

import keras
import numpy as np
import pytest

from legan_tf.models.legan import LEGANGenerator
from legan_tf.photos import app as face_app
from legan_tf.photos import samples
from tests.photos.test_app import _png, _request, _serving, page_with_the_astronaut

LABELS = {"expression": ["happy", "sad"], "lighting": ["front", "left_90", "right_90"]}


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    folder = tmp_path_factory.mktemp("legan")
    keras.utils.set_random_seed(0)
    generator = LEGANGenerator(64, 2, 3, base_filters=4, num_residual_blocks=1, output_mode="attention")
    generator((np.zeros((1, 64, 64, 3), np.float32), np.zeros((1, 5), np.float32)))
    generator.save(folder / "generator.keras")
    (folder / "labels.json").write_text(json.dumps(LABELS))
    yield from _serving(face_app.FaceEditorApp(str(folder / "generator.keras"), max_upload_bytes=2 ** 22))


def test_the_api_takes_a_lighting_and_names_the_known_ones_for_an_unknown_one(running):
    status, body = _request(running, "/api/model")
    assert status == 200 and json.loads(body)["labels"] == LABELS
    photo = _png(samples.astronaut())
    status, body = _request(running, "/api/edit?expression=sad&lighting=left_90", photo)
    answer = json.loads(body)
    assert status == 200 and answer["targets"] == {"expression": "sad", "lighting": "left_90"}, answer
    status, body = _request(running, "/api/edit?expression=sad&lighting=sideways", photo)
    error = json.loads(body)["error"]
    assert status == 400 and "unknown lighting" in error and "front, left_90, right_90" in error, error


def test_a_person_picks_a_lighting_in_a_real_browser(running, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with page_with_the_astronaut(running, tmp_path) as (browser, wait):
        lighting = Select(browser.find_element(By.ID, "target-lighting"))
        assert [option.text for option in lighting.options] == LABELS["lighting"]
        lighting.select_by_value("right_90")
        Select(browser.find_element(By.ID, "target-expression")).select_by_value("happy")
        browser.find_element(By.ID, "edit").click()
        wait.until(lambda driver: driver.find_element(By.ID, "message").text.startswith("Edited"))
        text = browser.find_element(By.ID, "message").text
        assert "expression happy" in text and "lighting right_90" in text, text
        assert browser.find_element(By.ID, "edited").is_displayed()
