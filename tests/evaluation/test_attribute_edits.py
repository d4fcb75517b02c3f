"""The attribute-edit judge (StarGAN's CelebA benchmark) on known readings."""

import numpy as np

from legan_tf.evaluation.attribute_edits import attribute_figures, edit_targets, fid_choice

NAMES = ("Black_Hair", "Blond_Hair", "Male")
LABELS = np.array([[1, 0, 1], [0, 1, 0]], np.float32)


def test_edit_targets_are_the_references_test_edits():
    targets = edit_targets(LABELS, NAMES)
    np.testing.assert_array_equal(targets[0], [[1, 0, 1], [1, 0, 0]])  # black hair set, blond cleared
    np.testing.assert_array_equal(targets[1], [[0, 1, 1], [0, 1, 0]])
    np.testing.assert_array_equal(targets[2], [[1, 0, 0], [0, 1, 1]])  # male flipped


def test_figures_count_asked_and_kept_attributes_on_known_readings():
    targets = edit_targets(LABELS, NAMES)
    unedited = np.array([[1, 0, 1], [0, 1, 1]], np.float32)  # the judge misreads face 1 as male
    readings = np.array([[[1, 0, 1], [1, 0, 1]],
                         [[0, 1, 1], [0, 1, 1]],
                         [[1, 0, 1], [1, 1, 1]]], np.float32)  # the male edit of face 0 failed; face 1 went black
    figures = attribute_figures(NAMES, LABELS, unedited, targets, readings)
    assert figures["judge_accuracy"] == {"Black_Hair": 1.0, "Blond_Hair": 1.0, "Male": 0.5}
    # Edits that ask for something new: black for face 1 only, blond for face 0 only, male for both.
    assert figures["asked_edits"] == {"Black_Hair": 1, "Blond_Hair": 1, "Male": 2}
    assert figures["asked"] == {"Black_Hair": 1.0, "Blond_Hair": 1.0, "Male": 0.5}
    assert figures["asked_unedited"] == {"Black_Hair": 0.0, "Blond_Hair": 0.0, "Male": 0.5}
    # Black hair is kept where the blond edit of face 1... is not asked (it clears black: left out), and in both
    # male edits; face 1's male edit reads black where the face was not: 2 of 3.
    assert figures["kept_edits"] == {"Black_Hair": 3, "Blond_Hair": 3, "Male": 4}
    np.testing.assert_allclose(figures["kept"]["Black_Hair"], 2 / 3)
    assert figures["kept"]["Blond_Hair"] == 1.0 and figures["kept"]["Male"] == 1.0
    np.testing.assert_allclose(figures["asked_mean"], 2.5 / 3)
    np.testing.assert_allclose(figures["kept_mean"], (2 / 3 + 2) / 3)


def test_fid_edit_is_a_seeded_choice_among_edits_that_change_the_face():
    targets = edit_targets(LABELS, NAMES)
    chosen = fid_choice(LABELS, targets, seed=0)
    # Face 0 is already black-haired (edit 0 changes nothing); face 1 already blond (edit 1 changes nothing).
    assert chosen[0] in (1, 2) and chosen[1] in (0, 2)
    np.testing.assert_array_equal(chosen, fid_choice(LABELS, targets, seed=0))
    many = np.tile(LABELS, (200, 1))  # faces 0, 1, 0, 1, ...
    picks = fid_choice(many, edit_targets(many, NAMES), seed=1)
    assert set(picks[0::2]) == {1, 2} and set(picks[1::2]) == {0, 2}
