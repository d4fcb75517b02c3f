"""The expression-only wrapper of studies/teacher_on_relit: the lighting part of the label vector is dropped and the
expressions reach the generator in its own order."""

import numpy as np

from studies.teacher_on_relit.run import ExpressionOnly


class _Recorder:
    image_size, num_labels = 8, 3

    def __init__(self):
        self.labels = None

    def __call__(self, inputs, training=False):
        images, labels = inputs
        self.labels = labels
        return images + labels.argmax(axis=1)[:, None, None, None]


def test_the_wrapper_drops_the_lighting_and_reorders_the_expressions():
    generator = _Recorder()
    # The data's expressions a, b, c are the generator's slots 2, 0, 1; the data has 4 lightings.
    wrapped = ExpressionOnly(generator, [2, 0, 1], 4)
    assert (wrapped.image_size, wrapped.num_labels) == (8, 7)
    images = np.zeros((3, 8, 8, 1), np.float32)
    labels = np.zeros((3, 7), np.float32)
    labels[[0, 1, 2], [0, 1, 2]] = 1           # expressions a, b, c
    labels[[0, 1, 2], [3 + 3, 3 + 0, 3 + 2]] = 1  # any lighting
    out = wrapped((images, labels))
    np.testing.assert_array_equal(generator.labels, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(out[:, 0, 0, 0], [2, 0, 1])
