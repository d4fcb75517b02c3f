"""The judging networks of an evaluation, loaded once and shared by every run judged, and whether a run's
generator was trained against one of them.

`load_judges(...)` loads the classifier, identity network f, quality model Q, Inception-v3, LPIPS and
the depth network that are given (each optional); a file given that is missing or of the wrong kind is
a ConfigError. `judges_used_in_training(run, judges)` says, per judge, whether the run's flags.txt
trained against that very file (by path or content), so that a figure from the generator's own
training judge is marked as not independent.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Optional, Tuple

from legan_tf.digests import file_sha256
from legan_tf.errors import ConfigError
from legan_tf.evaluation.run_under_test import RunUnderTest
from legan_tf.runs import FLAGS_FILE, RunDir, load_model

_DIGESTS: Dict[Tuple[str, float], str] = {}


def file_digest(path: str) -> str:
    """SHA-256 of a file (cached per path and modification time); "" for no file."""
    if not path or not os.path.isfile(path):
        return ""
    key = (os.path.abspath(path), os.path.getmtime(path))
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(path)
    return _DIGESTS[key]


@dataclasses.dataclass
class Judge:
    """One judging network (or weights file) given by flag, shared by every run evaluated."""

    name: str            # "classifier", "identity", "quality", "inception", "lpips", "depth"
    flag: str = ""       # the flag that gave it, e.g. "--quality_model"
    path: str = ""       # the file ("" when not given; "imagenet" for Keras' Inception download)
    model: Any = None    # the loaded network (Inception is loaded by its metrics)
    description: str = ""

    @property
    def given(self) -> bool:
        return bool(self.path) or self.model is not None

    def record(self) -> dict:
        local = bool(self.path) and os.path.isfile(self.path)
        return {"flag": self.flag, "given": self.given,
                "path": os.path.abspath(self.path) if local else (self.path or None),
                "sha256": file_digest(self.path) if local else None, "description": self.description}


@dataclasses.dataclass
class Judges:
    """The judges of an evaluation; `inception_extractor` replaces Inception-v3 (a test's stand-in)."""

    classifier: Judge = dataclasses.field(default_factory=lambda: Judge("classifier", "--classifier"))
    identity: Judge = dataclasses.field(default_factory=lambda: Judge("identity", "--identity_model"))
    quality: Judge = dataclasses.field(default_factory=lambda: Judge("quality", "--quality_model"))
    inception: Judge = dataclasses.field(default_factory=lambda: Judge("inception", "--inception_weights"))
    lpips: Judge = dataclasses.field(default_factory=lambda: Judge("lpips", "--lpips_weights"))
    depth: Judge = dataclasses.field(default_factory=lambda: Judge("depth", "--depth_judge"))
    inception_extractor: Any = None

    def records(self) -> Dict[str, dict]:
        return {judge.name: judge.record() for judge in (self.classifier, self.identity, self.quality,
                                                          self.inception, self.lpips, self.depth)}


def load_judges(classifier: Optional[str] = None, identity_model: Optional[str] = None,
                identity_weights: Optional[str] = None, quality_model: Optional[str] = None,
                inception_weights: Optional[str] = None, lpips_weights: Optional[str] = None,
                depth_judge: Optional[str] = None, inception_extractor=None) -> Judges:
    """Loads the judges given (each optional); a file given that is missing or of the wrong kind is a ConfigError.

    identity_model: an identity_model.keras of this project (--task=identity); identity_weights: the
    official LightCNN-29 v2 weights converted to .npz (tools/convert_lightcnn.py), at the paper's
    128 px. inception_weights: "fid2015" (the FID Inception converted into weights/fid_inception_2015.npz),
    the path of such an .npz, "imagenet" (Keras' ImageNet InceptionV3, cached download: another protocol) or a
    Keras .h5; it is loaded by the FID/KID metrics, which report it unavailable when it cannot be had.
    """
    judges = Judges(inception_extractor=inception_extractor)
    if classifier:
        from legan_tf.models.classifier import AttributeClassifier

        model = load_model(classifier, "classifier", "--classifier", AttributeClassifier)
        judges.classifier = Judge("classifier", "--classifier", classifier, model,
                                  f"AttributeClassifier, {model.image_size} px, heads {dict(model.head_classes)}")
    if identity_model and identity_weights:
        raise ConfigError("give one of --identity_model (an identity_model.keras) and --identity_weights "
                          "(LightCNN-29 v2 .npz), not both.")
    if identity_model or identity_weights:
        from legan_tf.models.lightcnn import load_identity_embedder

        path, flag = (identity_model, "--identity_model") if identity_model else (identity_weights,
                                                                                    "--identity_weights")
        if not os.path.isfile(path):
            raise ConfigError(f"{flag}={path}: no such identity network file.")
        model = load_identity_embedder(path)
        what = "LightCNN-29 v2 (official weights)" if path.endswith(".npz") else "IdentityEmbedder"
        judges.identity = Judge("identity", flag, path, model,
                                f"{what}, {model.input_size} px input, {model.embedding_dim}-d embedding")
    if quality_model:
        from legan_tf.models.quality import QualityModel

        model = load_model(quality_model, "quality model", "--quality_model", QualityModel)
        judges.quality = Judge("quality", "--quality_model", quality_model, model,
                               f"QualityModel, {model.image_size} px")
    if inception_weights and str(inception_weights).lower() != "none":
        from legan_tf.evaluation.metrics import features

        path = str(inception_weights)
        if path.lower() == features.FID_WEIGHTS_KEYWORD and os.path.isfile(features.DEFAULT_FID_WEIGHTS):
            path = features.DEFAULT_FID_WEIGHTS  # recorded with its SHA-256
        fid_network = path.lower() == features.FID_WEIGHTS_KEYWORD or path.endswith(".npz")
        judges.inception = Judge("inception", "--inception_weights", path, None,
                                 features.FID_NETWORK_NAME if fid_network else features.KERAS_NETWORK_NAME)
    if inception_extractor is not None:
        judges.inception = Judge("inception", "--inception_weights", "", inception_extractor,
                                 f"stand-in feature network: {getattr(inception_extractor, 'name', 'given')}")
    if lpips_weights:
        from legan_tf.evaluation.metrics.lpips import load_lpips_network

        network = load_lpips_network(lpips_weights, "--lpips_weights")
        judges.lpips = Judge("lpips", "--lpips_weights", lpips_weights, network,
                             f"LPIPS v0.1, {network.net} backbone"
                             + ("" if network.published else " (not the published widths)"))
    if depth_judge:
        from legan_tf.models.depth import DepthGenerator

        model = load_model(depth_judge, "depth network", "--depth_judge", DepthGenerator,
                           " (the depth_generator.keras of a --task=depth_pretrain run)")
        judges.depth = Judge("depth", "--depth_judge", depth_judge, model,
                             f"DepthGenerator ({model.geometry}), {model.image_size} px")
    return judges


# Which of a recipe's flags name a judge it trained against, and the weight that switches that loss on.
TRAINING_JUDGE_FLAGS = {
    "quality": (("quality_model",), "lambda_qual"),
    "identity": (("identity_model", "identity_weights"), "lambda_id"),
    "depth": (("pretrained_run",), "depth_weight"),
}


def _resolve_training_path(value: str, run: RunUnderTest) -> str:
    """A path from flags.txt: as given (relative to the working directory the run was started from, which is
    usually this one), else relative to the folder holding the runs root (runs/<run>/../..)."""
    if os.path.exists(value) or os.path.isabs(value) or not run.run_dir:
        return value
    beside = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(run.run_dir))), value)
    return beside if os.path.exists(beside) else value


def judges_used_in_training(run: RunUnderTest, judges: Judges) -> Dict[str, dict]:
    """Per judge: was it the network this run's generator was trained against? By path or by file content.

    `used` is True (the flag names this very file, its loss switched on), False, or None (the run names a
    file that is not there to compare). `why` says which flag, for the report.
    """
    result = {}
    for name in ("classifier", "identity", "quality", "inception", "lpips", "depth"):
        judge = getattr(judges, name)
        entry = {"used": False, "flag": None, "why": ""}
        if name not in TRAINING_JUDGE_FLAGS:
            entry["why"] = "GAN recipes train against no such network"
            result[name] = entry
            continue
        fields, weight_field = TRAINING_JUDGE_FLAGS[name]
        for field in fields:
            flag, value = run.recipe_flag(field)
            if not value:
                continue
            trained = _resolve_training_path(value, run)
            if name == "depth":
                trained = RunDir(trained).model_path("depth_generator")  # the pre-training run's network
            weight_flag, weight = run.recipe_flag(weight_field)
            entry["flag"] = f"--{flag}={value}"
            if not judge.path:
                entry["why"] = f"the run trained against --{flag}={value}; no {judge.flag} given here"
                continue
            if weight and float(weight) == 0.0:
                entry["why"] = f"--{flag} names a file but --{weight_flag}=0: not trained against"
                continue
            same_path = os.path.realpath(trained) == os.path.realpath(judge.path)
            if same_path or (os.path.isfile(trained) and file_digest(trained) == file_digest(judge.path)):
                entry.update(used=True, why=f"the run's --{flag}={value} is this very network"
                                            + ("" if same_path else " (the same file content)"))
            elif not os.path.isfile(trained):
                entry.update(used=None, why=f"the run trained against --{flag}={value}, which is not here to compare")
            else:
                entry["why"] = f"not the run's --{flag}={value} (another file)"
        if entry["flag"] is None:
            entry["why"] = f"the {run.task or 'unknown'} run names none" if run.task else f"no {FLAGS_FILE} to read"
        result[name] = entry
    return result

