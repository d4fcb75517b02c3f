"""What differs between Keras's TensorFlow and JAX backends in a training step, and nothing else.

Every loss, the gradient penalty, the label vectors and the GAN updates are written once with
`keras.ops` (legan_tf.losses, legan_tf.gan). Four things cannot be: how a gradient is taken
(`apply_gradients`, `input_gradient`), where a replica sits in a data-parallel group
(`replica_index`, `num_replicas`, `all_gather`), and how a stateless random draw is made
(`stateless_uniform`, `stateless_normal`). Each has one TensorFlow and one JAX branch here.

Under TensorFlow a step runs imperatively inside `tf.distribute`'s replica context: a
GradientTape records the loss and the optimizer assigns the variables. Under JAX the project's
trainer (legan_tf.training.jax_backend) runs the same code inside a `keras.StatelessScope` that
maps every variable to a traced value and collects every assignment, so the step is one pure
function that `jax.jit` compiles; `apply_gradients` takes `jax.value_and_grad` over the loss
with the differentiated variables swapped for arguments. Under JAX a step sees the whole global
batch (data parallelism is a sharding of that batch, not replicas), so the replica helpers are
trivial there.
"""

from __future__ import annotations

import keras
from keras import ops

BACKENDS = ("tensorflow", "jax")


def name() -> str:
    return keras.backend.backend()


def _unsupported():
    return NotImplementedError(f"legan_tf trains under the {' and '.join(BACKENDS)} backends of Keras, "
                               f"not {name()!r}.")


def _sum_float32(values):
    return ops.sum(ops.cast(values, "float32"))


def input_gradient(fn, inputs):
    """d sum(fn(x)) / dx at x = inputs, itself differentiable (a gradient penalty's inner gradient)."""
    if name() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(inputs)
            total = _sum_float32(fn(inputs))
        return tape.gradient(total, inputs)
    if name() == "jax":
        import jax

        return jax.grad(lambda x: _sum_float32(fn(x)))(inputs)
    raise _unsupported()


def _replica_context():
    if name() != "tensorflow":
        return None
    import tensorflow as tf

    return tf.distribute.get_replica_context()


def replica_index():
    """This replica's position in its tf.distribute sync group (0 outside one, and always under JAX)."""
    context = _replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 0  # a Python int: shapes computed from it stay static (JAX needs them so)
    return ops.cast(context.replica_id_in_sync_group, "int32")


def num_replicas() -> int:
    context = _replica_context()
    return 1 if context is None else int(context.num_replicas_in_sync)


def all_gather(values):
    """`values` of every replica concatenated along axis 0 (just `values` with one replica)."""
    context = _replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    import tensorflow as tf

    # tf.distribute sends a collective to the devices of the tensor it is given (`tensor.device`). With
    # one device per process (MultiWorkerMirroredStrategy on each machine's CPU or single GPU) a replica's
    # values stay a plain tensor, not a per-replica value naming its devices, and a tensor that no op of
    # the replica function made (a batch column passed through, e.g. labels already int32 that a cast
    # returns unchanged) names no device at all: TensorFlow then refuses it ("destinations can not be
    # empty"). An identity made here runs under the replica's device scope and so names its device.
    return context.all_gather(tf.identity(values), axis=0)


def stateless_uniform(shape, run_seed: int, stream_key: int, step):
    """U(0, 1) float32 draws that depend on (run seed, stream key, step) only.

    TensorFlow: Philox with the seed (run_seed, stream_key * 2**32 + step), the rule of
    legan_tf.random_streams. JAX (no 64-bit integers by default): threefry with the key
    fold_in(fold_in(key(run_seed), stream_key), step). So each backend repeats itself exactly,
    a resumed run included, but the two backends draw different numbers from the same law.
    """
    if name() == "tensorflow":
        import tensorflow as tf

        seed = tf.stack([tf.cast(run_seed, tf.int64), tf.constant(stream_key * 2**32, tf.int64) + tf.cast(step, tf.int64)])
        return tf.random.stateless_uniform(shape, seed=seed)
    if name() == "jax":
        import jax

        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(run_seed), stream_key), ops.cast(step, "uint32"))
        return jax.random.uniform(key, shape, dtype="float32")
    raise _unsupported()


def stateless_normal(shape, run_seed: int, stream_key: int, step):
    """N(0, 1) float32 draws keyed as `stateless_uniform`'s."""
    if name() == "tensorflow":
        import tensorflow as tf

        seed = tf.stack([tf.cast(run_seed, tf.int64), tf.constant(stream_key * 2**32, tf.int64) + tf.cast(step, tf.int64)])
        return tf.random.stateless_normal(shape, seed=seed)
    if name() == "jax":
        import jax

        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(run_seed), stream_key), ops.cast(step, "uint32"))
        return jax.random.normal(key, shape, dtype="float32")
    raise _unsupported()


# TensorFlow only (--jit_compile): each update's loss and gradients run as one XLA-compiled function.
# The optimizer's apply stays outside it: under tf.distribute it all-reduces the gradients across
# replicas, which XLA cannot compile (the JAX trainer always compiles its whole update).
_TF_JIT = {"enabled": False}


def set_jit_compile(enabled: bool) -> None:
    """Compile the loss-and-gradient part of every update with XLA under TensorFlow (--jit_compile)."""
    _TF_JIT["enabled"] = bool(enabled)


def apply_gradients(optimizer, variables, loss_fn):
    """One optimizer step on `variables` down the gradient of `loss_fn() -> (loss, aux)`; returns aux.

    `loss_fn` reads the networks' variables as it likes; only `variables` are differentiated.
    """
    if name() == "tensorflow":
        import tensorflow as tf

        def loss_and_gradients():
            with tf.GradientTape() as tape:
                loss, aux = loss_fn()
                # A LossScaleOptimizer (--mixed_precision=mixed_float16) multiplies by its scale and divides
                # the gradients back in apply; any other optimizer returns the loss as it is.
                loss = optimizer.scale_loss(loss)
            return aux, tape.gradient(loss, variables)

        if _TF_JIT["enabled"]:
            loss_and_gradients = tf.function(loss_and_gradients, jit_compile=True)
        aux, gradients = loss_and_gradients()
        optimizer.apply_gradients(zip(gradients, variables))
        return aux
    if name() == "jax":
        return _jax_apply_gradients(optimizer, variables, loss_fn)
    raise _unsupported()


def _jax_apply_gradients(optimizer, variables, loss_fn):
    import jax
    from keras.src.backend.common.stateless_scope import get_stateless_scope

    outer = get_stateless_scope()
    if outer is None:
        raise RuntimeError("Under JAX a training step runs inside legan_tf.training.jax_backend's stateless step "
                           "(a keras.StatelessScope); model.fit() is the TensorFlow backend's.")
    differentiated = {id(variable) for variable in variables}

    def loss_of(values):
        inner = keras.StatelessScope(state_mapping=list(zip(variables, values)))
        # Everything else (the other network, frozen judges, step counters) keeps the values the
        # enclosing step maps it to; a variable missing here would read its stale host value.
        inner.state_mapping = {**outer.state_mapping, **inner.state_mapping}
        before = dict(inner.state_mapping)
        with inner:
            loss, aux = loss_fn()
            loss = optimizer.scale_loss(loss)
        # Assignments made inside the loss (none in this project's networks today: no batch norm
        # statistics) are carried out to the enclosing step rather than lost.
        updates = {key: value for key, value in inner.state_mapping.items()
                   if key not in differentiated and value is not before.get(key)}
        return loss, (aux, updates)

    current = [variable.value for variable in variables]
    (_, (aux, updates)), gradients = jax.value_and_grad(loss_of, has_aux=True)(current)
    outer.state_mapping.update(updates)
    new_values, new_optimizer_values = optimizer.stateless_apply(
        [variable.value for variable in optimizer.variables], gradients, current)
    for variable, value in zip(variables, new_values):
        variable.assign(value)
    for variable, value in zip(optimizer.variables, new_optimizer_values):
        variable.assign(value)
    return aux
