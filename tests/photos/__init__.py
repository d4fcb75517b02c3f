"""Tests of legan_tf.photos and scripts/make_depth.py."""
