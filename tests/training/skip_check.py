"""SkipNonFiniteUpdates under whichever Keras backend runs this (a test helper; prints a JSON line).

    KERAS_BACKEND=<tensorflow|jax> python tests/training/skip_check.py

A one-weight model, Adam wrapped in SkipNonFiniteUpdates, three updates through legan_tf.backend's
apply_gradients: a finite loss, a NaN loss, a finite loss. Under JAX the updates run inside a
StatelessScope as the JAX trainer runs them.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from legan_tf import backend, optimizers  # noqa: E402


def main():
    optimizers.set_skip_non_finite(True)
    optimizer = optimizers.adam(0.1)
    weight = keras.Variable(np.ones((2,), np.float32), name="w")
    optimizer.build([weight])
    values, counters = [], []
    for target in (0.0, float("nan"), 0.0):
        def loss_fn():
            loss = ops.sum(ops.square(weight - target))
            return loss, {"loss": loss}

        if backend.name() == "jax":
            state = [weight, *optimizer.variables]
            with keras.StatelessScope(state_mapping=[(v, v.value) for v in state]) as scope:
                backend.apply_gradients(optimizer, [weight], loss_fn)
            for variable in state:
                variable.assign(scope.get_current_value(variable))
        else:
            backend.apply_gradients(optimizer, [weight], loss_fn)
        values.append(ops.convert_to_numpy(weight.value).tolist())
        counters.append(int(ops.convert_to_numpy(optimizer.consecutive_skips.value)))
    print(json.dumps({"values": values, "skips": counters, "iterations": int(ops.convert_to_numpy(optimizer.iterations))}))


if __name__ == "__main__":
    main()
