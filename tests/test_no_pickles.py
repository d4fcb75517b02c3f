"""Nothing in the project unpickles a file it did not make: models load through Keras with safe mode
on, arrays through numpy without pickles. The one exception is the documented LightCNN converter
(tools/convert_lightcnn.py), whose --allow_pickle the user must pass for a checkpoint they trust."""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCANNED = ("legan_tf", "scripts", "serving", "studies", "tools")
CONVERTER = {os.path.join("legan_tf", "models", "lightcnn.py"), os.path.join("tools", "convert_lightcnn.py")}
FORBIDDEN = [
    (re.compile(r"^\s*(import|from)\s+(pickle|cPickle|dill|cloudpickle)\b"), "imports a pickle module"),
    (re.compile(r"\bpickle\.loads?\("), "unpickles"),
    (re.compile(r"\bjoblib\.load\("), "unpickles (joblib)"),
    (re.compile(r"allow_pickle\s*=\s*True"), "lets numpy unpickle"),
    (re.compile(r"safe_mode\s*=\s*False"), "turns Keras safe mode off"),
    (re.compile(r"\b(np|numpy)\.load\((?![^)]*allow_pickle\s*=\s*False)"), "np.load without allow_pickle=False"),
    (re.compile(r"\btorch\.load\((?![^)]*weights_only)"), "torch.load without weights_only"),
]


def _python_files():
    for top in SCANNED:
        for folder, _, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    yield os.path.relpath(path, REPO), path


def test_no_file_is_unpickled_outside_the_documented_converter():
    found = []
    scanned = 0
    for relative, path in _python_files():
        scanned += 1
        for number, line in enumerate(open(path, encoding="utf-8"), start=1):
            for pattern, what in FORBIDDEN:
                if pattern.search(line) and not (relative in CONVERTER and "allow_pickle" in line):
                    found.append(f"{relative}:{number}: {what}: {line.strip()}")
    assert scanned > 50  # the scan saw the package, not an empty folder
    assert not found, "\n".join(found)


def test_the_scan_finds_what_it_forbids():
    samples = ["import pickle", "data = pickle.load(handle)", "np.load(path, allow_pickle=True)",
               "keras.models.load_model(path, safe_mode=False)", "np.load(path)", "torch.load(path)"]
    for sample in samples:
        assert any(pattern.search(sample) for pattern, _ in FORBIDDEN), sample
    assert not any(pattern.search("np.load(path, allow_pickle=False)") for pattern, _ in FORBIDDEN)
