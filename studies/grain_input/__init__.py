"""The JAX path's reader (`legan_tf.data.numpy_input`) against grain, Google's data loader for JAX, on the same
shards at the same moment (docs/backends.md, "The JAX path's input"). grain is not a dependency of legan-tf;
`run.py` says how to install it for the run."""
