"""The web page with a multi-label model (CelebA's binary attributes): the page shows a box per attribute, the
API takes the ticked names (none is a valid answer), an unknown name is a message naming the known ones, and a
person ticks attributes in a real browser.

The generator is a small untrained StarGAN saved with its attribute names: what is checked is the page's
handling of a multi-label group, not what a trained model draws (tests/photos/test_app.py covers that)."""

import json

import keras
import numpy as np
import pytest

from legan_tf.models.stargan import StarGANGenerator
from legan_tf.photos import app as face_app
from legan_tf.photos import samples
from tests.photos.test_app import _png, _request, _serving, page_with_the_astronaut

LABELS = {"attributes": ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]}


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    folder = tmp_path_factory.mktemp("celeba")
    keras.utils.set_random_seed(0)
    generator = StarGANGenerator(image_size=64, num_labels=5, base_filters=4, num_residual_blocks=1)
    generator((np.zeros((1, 64, 64, 3), np.float32), np.zeros((1, 5), np.float32)))
    generator.save(folder / "generator.keras")
    (folder / "labels.json").write_text(json.dumps(LABELS))
    yield from _serving(face_app.FaceEditorApp(str(folder / "generator.keras"), max_upload_bytes=2 ** 22))


def test_the_api_takes_the_ticked_attributes_and_names_the_known_ones_for_an_unknown_one(running):
    status, body = _request(running, "/api/model")
    described = json.loads(body)
    assert status == 200 and described["labels"] == LABELS and described["multi_label"] == ["attributes"]
    photo = _png(samples.astronaut())
    status, body = _request(running, "/api/edit?attributes=Young,Blond_Hair", photo)
    answer = json.loads(body)
    assert status == 200 and answer["targets"] == {"attributes": "Blond_Hair,Young"}, answer  # the model's order
    status, body = _request(running, "/api/edit?attributes=", photo)  # none ticked: a face with none of them
    assert status == 200 and json.loads(body)["targets"] == {"attributes": ""}
    status, body = _request(running, "/api/edit?attributes=Blonde_Hair", photo)
    error = json.loads(body)["error"]
    assert status == 400 and "unknown Blonde_Hair" in error and "Black_Hair, Blond_Hair" in error, error
    status, body = _request(running, "/api/edit?expression=happy", photo)
    error = json.loads(body)["error"]
    assert status == 400 and "does not edit expression" in error and "--" not in error, error


def test_a_person_ticks_attributes_in_a_real_browser(running, tmp_path):
    from selenium.webdriver.common.by import By

    with page_with_the_astronaut(running, tmp_path) as (browser, wait):
        assert "5 attributes" in browser.find_element(By.ID, "model").text
        boxes = [browser.find_element(By.ID, f"target-attributes-{name}") for name in LABELS["attributes"]]
        assert [box.get_attribute("type") for box in boxes] == ["checkbox"] * 5
        assert not any(box.is_selected() for box in boxes)
        boxes[4].click()   # Young
        boxes[1].click()   # Blond_Hair
        browser.find_element(By.ID, "edit").click()
        wait.until(lambda driver: driver.find_element(By.ID, "message").text.startswith("Edited"))
        text = browser.find_element(By.ID, "message").text
        assert "attributes Blond_Hair,Young" in text, text
        assert browser.find_element(By.ID, "edited").is_displayed()
        for box in boxes:  # none ticked
            if box.is_selected():
                box.click()
        browser.find_element(By.ID, "edit").click()
        wait.until(lambda driver: "attributes (none)" in driver.find_element(By.ID, "message").text)
