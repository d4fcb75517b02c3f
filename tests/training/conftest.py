"""Shared fixtures of the training tests."""

import pytest


@pytest.fixture(scope="module")
def tiny_lab(tmp_path_factory):
    """The data flags of scripts/train.py for a tiny face lab (32 px, 4 identities, 2 lightings)."""
    from legan_tf.data.synthetic.writer import write_face_lab

    root = tmp_path_factory.mktemp("lab")
    write_face_lab(root, image_size=32, num_identities=4, seed=0, num_lightings=2, naturalness_variants=1,
                   rgbd_lightings_per_face=1)
    return ["--data_format=multipie", f"--data_path={root / 'multipie' / 'manifest.csv'}", "--num_lightings=2"]
