"""The face detector and mesh on LiteRT (ai-edge-litert) and on TensorFlow's tf.lite.Interpreter: the
same landmarks, and the fallback when LiteRT is missing."""

import sys

import numpy as np
import pytest

from legan_tf.errors import ConfigError
from legan_tf.photos import face_mesh, faces, samples


def test_litert_and_tensorflow_give_the_same_landmarks():
    """Both runtimes execute the same .tflite flatbuffers in float32 (XNNPACK kernels on a CPU), so the
    landmarks agree up to float32 rounding: relative 1e-6 of coordinates of at most ~600 px is under
    1e-3 px, well inside the 0.01 px allowed here (on this project's machines they were bit-identical)."""
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is in requirements.lock; make test installs it")
    for name, photo in samples.sample_faces().items():
        meshes = {}
        for kind in ("litert", "tensorflow"):
            finder = faces.FaceFinder("auto", interpreter=kind)
            assert finder.interpreter == kind
            found, _ = finder(photo)
            meshes[kind] = np.stack([face.points for face in found])
            single = face_mesh.FaceMesh(interpreter=kind)
            assert single.interpreter == kind
            meshes[kind + "-one"] = single(photo).points
        assert meshes["litert"].shape == (1, 468, 3), name
        np.testing.assert_allclose(meshes["litert"], meshes["tensorflow"], atol=0.01, err_msg=name)
        np.testing.assert_allclose(meshes["litert-one"], meshes["tensorflow-one"], atol=0.01, err_msg=name)


def test_without_litert_auto_falls_back_and_litert_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)   # import ai_edge_litert now raises ImportError
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    assert face_mesh.interpreter_class("auto")[0] == "tensorflow"
    assert faces.FaceFinder("short").interpreter == "tensorflow"
    with pytest.raises(ConfigError, match="the LiteRT interpreter needs ai-edge-litert==2.3.0"):
        face_mesh.interpreter_class("litert")
    with pytest.raises(ConfigError, match="--interpreter must be one of auto, litert, tensorflow"):
        face_mesh.interpreter_class("onnx")
