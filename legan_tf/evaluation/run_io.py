"""What the translation evaluations read and write: a GAN run's flags.txt settings, the face lab's
lab.json, saved models, and the evaluation folder's translation_metrics.json."""

from __future__ import annotations

import json
import os
from typing import Dict, Mapping, Optional, Sequence, Tuple

from absl import flags

from legan_tf.data.synthetic.expressions import EXPRESSION_SETS
from legan_tf.data.synthetic.writer import SETTINGS_FILE as LAB_SETTINGS_FILE
from legan_tf.errors import ConfigError
from legan_tf.training.run_dir import parse_run_flags

GENERATOR_FILE = "generator.keras"
EVALUATION_DIR = "evaluation"
METRICS_FILE = "translation_metrics.json"
SAMPLES_FILE = "translation_samples.png"

# What the evaluation needs from a run's flags.txt (or the command line); `task` picks the default check.
RUN_SETTINGS = ("task", "image_size", "expression_names", "lighting_names", "num_lightings", "data_path")


def read_run_settings(run_dir: str) -> Dict[str, object]:
    """The RUN_SETTINGS lines of `<run_dir>/flags.txt`, parsed with their types; absent ones are left out."""
    run_flags = flags.FlagValues()
    flags.DEFINE_string("task", None, "", flag_values=run_flags)
    flags.DEFINE_integer("image_size", None, "", flag_values=run_flags)
    flags.DEFINE_list("expression_names", None, "", flag_values=run_flags)
    flags.DEFINE_list("lighting_names", None, "", flag_values=run_flags)
    flags.DEFINE_integer("num_lightings", None, "", flag_values=run_flags)
    flags.DEFINE_string("data_path", None, "", flag_values=run_flags)
    parse_run_flags(run_dir, run_flags)
    return {name: run_flags[name].value for name in RUN_SETTINGS if run_flags[name].present}


def lab_settings(data_path: Optional[str], overrides: Mapping[str, object], expression_names: Sequence[str],
                 num_lightings: int, image_size: int) -> Dict[str, object]:
    """The FaceLab arguments: `<lab>/lab.json` (the lab root holds `multipie/manifest.csv`, or
    `rgbd/manifest.csv` for a run on the lab's RGB-depth pairs), then overrides.

    Without a lab.json, the expression set is the one whose names are the run's, the lights the
    run's count, the size the model's, and seed and ambient FaceLab's defaults (held-out identities
    are unseen under any seed; the ambient share must be the lab's, so pass it when not the default).
    """
    settings = {"image_size": image_size, "expression_set": None, "num_lightings": num_lightings,
                "seed": 0, "ambient": 0.25, "subjects": [], "lab_json": None, "part": "multipie"}
    if data_path:
        data_path = os.path.abspath(data_path)
        lab_json = os.path.join(os.path.dirname(os.path.dirname(data_path)), LAB_SETTINGS_FILE)
        # The part the run trained on: its manifest's folder (rgbd/ for RGB-depth pairs).
        part = "rgbd" if os.path.basename(os.path.dirname(data_path)) == "rgbd" else "multipie"
        if os.path.isfile(lab_json):
            with open(lab_json, encoding="utf-8") as handle:
                saved = json.load(handle)
            if part not in saved or not saved.get("counts", {}).get(part, 1):
                raise ConfigError(f"{lab_json}: the lab has no {part} part, so no labelled faces to translate.")
            settings.update(part=part)
            settings.update(image_size=saved["image_size"], expression_set=saved[part]["expression_set"],
                            num_lightings=len(saved["lighting_names"]), seed=saved["seed"],
                            ambient=saved["ambient"], subjects=saved["subjects"], lab_json=lab_json)
    settings.update({name: value for name, value in overrides.items() if value is not None})
    if settings["expression_set"] is None:
        matching = [name for name, names in EXPRESSION_SETS.items() if tuple(names) == tuple(expression_names)]
        if not matching:
            raise ConfigError(f"the expressions {','.join(expression_names)} are no face-lab expression set "
                              f"({', '.join(sorted(EXPRESSION_SETS))}); pass --lab_expression_set.")
        settings["expression_set"] = matching[0]
    return settings


def load_model(path: str, what: str, flag: str, expected: Optional[type] = None, hint: str = ""):
    """A saved .keras model of this project; a missing or unreadable file is a ConfigError naming `flag`.

    `what` names the model in the message ("generator", "classifier"). With `expected`, a model of another
    class is a ConfigError too ("a X, not a Y", then `hint`).
    """
    import keras

    import legan_tf.models  # noqa: F401  (registers the networks, so load_model can rebuild them)

    if not os.path.isfile(path):
        raise ConfigError(f"{flag}={path}: no such {what} file.")
    try:
        model = keras.models.load_model(path)
    except (OSError, ValueError, TypeError) as error:
        raise ConfigError(f"{path}: cannot load the {what} ({error}).") from None
    if expected is not None and not isinstance(model, expected):
        article = "an" if expected.__name__[0] in "AEIOU" else "a"
        raise ConfigError(f"{path}: a {type(model).__name__}, not {article} {expected.__name__}{hint}.")
    return model


def infer_attributes(num_labels: int, class_counts: Mapping[str, int]) -> Tuple[str, ...]:
    """Which attributes a generator's label vector covers, from its length (expression first)."""
    candidates = [("expression", "lighting"), ("expression",), ("lighting",)]
    matching = [names for names in candidates if sum(class_counts[name] for name in names) == num_labels]
    if len(matching) != 1:
        why = "none" if not matching else "several"
        raise ConfigError(
            f"the generator takes {num_labels} labels; {why} of expression ({class_counts['expression']}), "
            f"lighting ({class_counts['lighting']}) or both fit: pass --attributes.")
    return matching[0]


def read_evaluation(path: str) -> Dict[str, float]:
    """The metrics of an evaluation: a translation_metrics.json, or a run directory holding evaluation/ with one."""
    if os.path.isdir(path):
        path = os.path.join(path, EVALUATION_DIR, METRICS_FILE)
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no translation metrics here; run scripts/evaluate_translation.py first.")
    with open(path) as f:
        try:
            return json.load(f)["metrics"]
        except (json.JSONDecodeError, KeyError):
            raise ConfigError(f"{path}: not a {METRICS_FILE} written by scripts/evaluate_translation.py.") from None
