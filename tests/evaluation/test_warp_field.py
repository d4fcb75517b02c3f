"""legan_tf.evaluation.warp_field: how far a warping generator moves the photo, and the lattice picture.

The figures are checked on fields whose lengths follow from arithmetic (a stand-in generator whose field is set
by its labels), and the lattice on whole-pixel moves, where bilinear reading is exact. The script's use of
them is checked in test_joint_edits.py."""

import numpy as np
import pytest

from legan_tf.evaluation import warp_field
from legan_tf.models.legan import LEGANGenerator

SIZE = 16


class LabelField:
    """A stand-in warping generator: the field is (target expression index, own lighting index) pixels along
    (rows, columns) everywhere, so its length is sqrt(e**2 + l**2) exactly."""

    expression_output = "warp"
    num_expressions, num_lightings, image_size, max_shift = 3, 2, SIZE, 0.25

    def __init__(self):
        self.calls = 0

    def displacement(self, inputs):
        images, labels = inputs
        self.calls += 1
        expression = np.argmax(labels[:, :3], axis=1).astype(np.float64)
        lighting = np.argmax(labels[:, 3:], axis=1).astype(np.float64)
        field = np.zeros((len(images), SIZE, SIZE, 2))
        field[..., 0] = expression[:, None, None]
        field[..., 1] = lighting[:, None, None]
        return field


def test_the_mean_length_is_read_over_the_central_half_only():
    fields = np.zeros((2, SIZE, SIZE, 2))
    fields[0, ..., 0], fields[0, ..., 1] = 3.0, 4.0              # length 5 everywhere
    fields[1] = 7.0                                             # large outside the centre ...
    fields[1, 4:12, 4:12] = 0.0                                 # ... rows and columns 4-11 (1/4 to 3/4 of 16) still
    np.testing.assert_array_equal(warp_field.central_mean_length(fields), [5.0, 0.0])


def test_lengths_follow_each_target_expression_at_the_faces_own_light():
    generator = LabelField()
    images = np.zeros((5, SIZE, SIZE, 3), np.float32)
    lighting = np.array([0, 1, 0, 1, 1])
    lengths = warp_field.displacement_lengths(generator, images, lighting, batch_size=2)
    expected = np.sqrt(np.arange(3)[None, :] ** 2 + lighting[:, None] ** 2)
    np.testing.assert_allclose(lengths, expected, rtol=1e-12)
    assert generator.calls == 3 * 3          # three batches (2, 2, 1 faces) x three targets


def test_the_summary_separates_expression_edits_from_the_faces_own_expression():
    lengths = np.array([[0.5, 2.0, 4.0],
                        [1.0, 0.5, 6.0]])
    own = np.array([0, 1])
    figures = warp_field.summarise(lengths, own, ("a", "b", "c"), allowed=4.0)
    assert figures["own_px"] == pytest.approx(0.5)
    assert figures["edit_px"] == pytest.approx((2.0 + 4.0 + 1.0 + 6.0) / 4)
    assert figures["edit_p90_px"] == pytest.approx(np.percentile([2.0, 4.0, 1.0, 6.0], 90))
    # Per target, over the faces whose own expression is another: a is face 1's edit, b face 0's, c both.
    assert figures["by_target"] == pytest.approx({"a": 1.0, "b": 2.0, "c": 5.0})
    assert figures["allowed_px"] == 4.0 and figures["faces"] == 2
    text = "\n".join(warp_field.report_lines(figures))
    assert "| 3.25 px |" in text and "at most 4.0 px" in text and "c 5.00 px" in text
    with pytest.raises(ValueError, match="faces, expressions"):
        warp_field.summarise(lengths[:, :2], own, ("a", "b", "c"), allowed=4.0)


def test_the_lattice_moves_with_a_whole_pixel_field():
    edits = np.full((1, 8, 8, 3), -1.0, np.float32)             # black
    still = np.zeros((1, 8, 8, 2), np.float32)
    drawn = warp_field.draw_moved_lattice(edits, still, scale=2, spacing=4)
    # Upscaled twice: lines every 8 output pixels from row/column 4; black elsewhere.
    line = np.zeros(16, bool)
    line[4::8] = True
    on = line[:, None] | line[None, :]
    np.testing.assert_allclose(drawn[0][on], np.broadcast_to(warp_field.LATTICE_COLOUR, (on.sum(), 3)), atol=1e-6)
    np.testing.assert_array_equal(drawn[0][~on], 0.0)
    # A move of one photo pixel down (each pixel reads the photo one row below) lifts the horizontal lines by the
    # upscale factor, 2 output rows; the vertical lines stay.
    down = still.copy()
    down[..., 0] = 1.0
    moved = warp_field.draw_moved_lattice(edits, down, scale=2, spacing=4)
    rows = np.zeros(16, bool)
    rows[[2, 10]] = True                                        # 4 - 2 and 12 - 2
    on = rows[:, None] | line[None, :]                          # rows 14-15 read the edge row 15, no line
    np.testing.assert_allclose(moved[0][on], np.broadcast_to(warp_field.LATTICE_COLOUR, (on.sum(), 3)), atol=1e-6)
    np.testing.assert_array_equal(moved[0][~on], 0.0)


def test_a_generator_built_with_the_warp_is_told_apart_from_one_without():
    options = dict(base_filters=4, num_residual_blocks=1, upsampling="resize", output_mode="attention",
                   grey_colour=True, warp_grid=4)
    assert warp_field.warps(LEGANGenerator(SIZE, 2, 3, expression_output="warp", **options))
    assert not warp_field.warps(LEGANGenerator(SIZE, 2, 3, **options))
    assert warp_field.allowed_px(LEGANGenerator(SIZE, 2, 3, expression_output="warp", max_shift=0.25, **options)) == 4.0


def test_the_lattice_grid_has_a_column_per_target_and_the_input():
    generator = LabelField()
    images = np.zeros((2, SIZE, SIZE, 3), np.float32)

    def translate(images, targets):
        return images

    labels = {"expression": np.array([0, 2]), "lighting": np.array([0, 1])}
    names = {"expression": ("a", "b", "c"), "lighting": ("x", "y")}
    picture = warp_field.lattice_grid(generator, translate, images, labels, names)
    assert picture.dtype == np.uint8 and picture.ndim == 3
    assert generator.calls == 3
