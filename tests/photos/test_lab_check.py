"""legan_tf.photos.lab_check: the mesh's depth against the face lab's exact depth."""

import numpy as np
import pytest

from legan_tf.photos import lab_check


def test_the_fit_removes_scale_and_offset_exactly():
    rng = np.random.default_rng(0)
    exact = np.where(rng.uniform(size=(32, 32)) > 0.3, rng.uniform(0.2, 1.0, (32, 32)), 0.0)
    mesh = np.where(exact > 0, (exact - 0.1) / 0.6, 0.0)      # exact = 0.6 * mesh + 0.1
    figures = lab_check.compare_depth(mesh, exact)
    assert figures["mae"] == pytest.approx(0, abs=1e-12) and figures["scale"] == pytest.approx(0.6)
    assert figures["offset"] == pytest.approx(0.1) and figures["coverage"] == 1.0 and figures["spill"] == 0.0


def test_lab_faces_are_found_and_their_depth_is_close_after_the_fit():
    results = lab_check.check_faces(3)
    summary = lab_check.summarise(results)
    assert summary["found"] == 3, summary["faults"]
    # Measured on 200 faces (docs/depth_maps.md): MAE 0.045 (max 0.072) depth units, 7.6% (max 10.8%) of the
    # face's depth range, fitted scale 0.60 (0.34-0.79), 75% of the lab's face covered. Bounds with headroom:
    assert summary["mae"]["max"] < 0.1 and summary["relative_mae"]["max"] < 0.15
    assert 0.3 < summary["scale"]["mean"] < 1.0
    assert summary["coverage"]["mean"] > 0.6 and summary["spill"]["max"] < 0.05
    assert "found 3 of 3 faces" in lab_check.report(summary)
