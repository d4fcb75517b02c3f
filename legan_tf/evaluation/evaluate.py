"""The papers' evaluation protocol on GAN runs in one call: scripts/evaluate.py's machinery (issue 16).

`evaluate(run_dir, compare=..., judges=load_judges(...))` evaluates one or several GAN run
directories of any recipe (stargan, legan, stargan_depth) on up to two sources of faces, and writes
`metrics.json`, `report.md` and PNG figures (`report.py`) to `<run_dir>/evaluation/` or `output_dir`.

Sources of faces:

  lab   the face lab the run trained on (a lab.json beside its data_path): faces of identities the lab
        never rendered, translated as the learning check translates them (`translation_metrics`: seeded
        sources and targets, the edit modes), each with the exact render of its target as paired truth.
        Gives the learning-check figures of scripts/evaluate_translation.py (the same pass) and, on the
        joint edits ("both"), every metric of the registry: FID and KID of the outputs against the exact
        target renders, SSIM, PSNR and LPIPS against them, the match score, Q of the outputs and of the
        exact targets, the generation rate with its confusion matrices.
  real  real faces without paired truth: `real` (a manifest or a folder), or by default the run's own
        held-out split, reopened from its flags.txt. Each face is translated to the labels of another
        face of the same set (a seeded permutation whose fixed points are moved), so that the outputs
        and the reference reals have the same class mix, and back to its own labels (the
        reconstruction, Bodur et al.'s PSNR/SSIM protocol). Gives FID/KID against the real set, Q of
        outputs and reals, the match score, the generation rate, and SSIM/PSNR/LPIPS of the
        reconstruction.

Baselines beside the models, once per distinct source: on the lab, "real faces" (the exact target
renders in the outputs' place: the classifier's ceiling, Q of real faces, the match score of two real
faces of one person) and "input unchanged" (the input in the outputs' place: what no edit scores on
FID, LPIPS, SSIM, PSNR); on real faces, "real faces" (Q of the reals, the classifier on their own labels).

Judges (classifier, identity network f, quality model Q, Inception-v3, LPIPS, depth network) are
loaded once and shared by every run. For each run the record says whether the run's flags.txt trained
against that very file (by path or content), so that a figure from the generator's own training judge
is marked as not independent. A metric whose judge is missing is unavailable, with the reason; it is
never computed from random weights.

Determinism: every draw is seeded by `seed` (faces, targets, KID's reservoir), data are read in file
order, and the networks run in inference mode, so the same checkpoint and seed give the same numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from legan_tf.data.config import MULTIPIE_EXPRESSIONS, MULTIPIE_NUM_LIGHTINGS, numbered_names
from legan_tf.errors import ConfigError
from legan_tf.evaluation import metrics as registry
from legan_tf.evaluation.run_io import (EVALUATION_DIR, GENERATOR_FILE, infer_attributes, lab_settings, load_model,
                                        read_run_settings)
from legan_tf.evaluation.translation_metrics import (ATTRIBUTES, BOTH, CHECK_SETS, DEFAULT_CHECK, class_names,
                                                     draw_edits, edit_modes, generator_translate_fn, kept_breakdown,
                                                     learning_check_verdict, mode_targets, render_model_faces,
                                                     translation_figures)

METRICS_JSON = "metrics.json"
REPORT_MD = "report.md"
FORMAT_VERSION = 1
LAB, REAL = "lab", "real"
SOURCES = (LAB, REAL)
DEFAULT_NUM_FACES = 300
DEFAULT_NUM_REAL = 1000
DEFAULT_FIRST_IDENTITY = 100000
# The metrics of each source, in report order. "reconstruction/<m>" compares G(G(x, t), s) with x.
LAB_METRICS = ("fid", "kid", "lpips", "ssim", "psnr", "match_score", "quality_score", "generation_rate")
REAL_METRICS = ("fid", "kid", "match_score", "quality_score", "generation_rate",
                "reconstruction/lpips", "reconstruction/ssim", "reconstruction/psnr")
BASELINE_REAL_FACES = "real faces"
BASELINE_INPUT = "input unchanged"


# --- the recipe's check --------------------------------------------------------------------------

def recipe_check(task: Optional[str]) -> str:
    """The check set a run's recipe holds its generators to: its task class's `translation_check`.

    A run with no --task (or a recipe that names no check) gets DEFAULT_CHECK.
    """
    if not task:
        return DEFAULT_CHECK
    from legan_tf import tasks  # TensorFlow, and only needed here

    try:
        task_class = tasks.get_task_class(task)
    except ValueError as error:
        raise ConfigError(f"{error} The run's recipe is unknown here: pass --kind.") from None
    check = getattr(task_class, "translation_check", DEFAULT_CHECK)
    if check not in CHECK_SETS:
        raise ConfigError(f"--task={task} names the learning check {check!r}; known: {', '.join(CHECK_SETS)}.")
    return check


# --- judges ---------------------------------------------------------------------------------------

_DIGESTS: Dict[Tuple[str, float], str] = {}


def file_digest(path: str) -> str:
    """SHA-256 of a file (cached per path and modification time); "" for no file."""
    if not path or not os.path.isfile(path):
        return ""
    key = (os.path.abspath(path), os.path.getmtime(path))
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
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
    official LightCNN-29 v2 weights converted to .npz (scripts/convert_lightcnn.py), at the paper's
    128 px. inception_weights: "imagenet" (Keras' download, cached) or a local weights file; it is
    loaded by the FID/KID metrics, which report it unavailable when it cannot be had.
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
        judges.inception = Judge("inception", "--inception_weights", str(inception_weights), None,
                                 "InceptionV3 avg pool (2048), Keras")
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


# --- the run under test ---------------------------------------------------------------------------

def read_flag_lines(run_dir: Optional[str]) -> Dict[str, str]:
    """Every `--name=value` line of `<run_dir>/flags.txt` as name -> value (booleans are left out)."""
    from legan_tf.training.run_dir import FLAGFILE_NAME, read_flagfile

    path = os.path.join(run_dir, FLAGFILE_NAME) if run_dir else ""
    if not path or not os.path.isfile(path):
        return {}
    lines = {}
    for line in read_flagfile(path).splitlines():
        line = line.strip()
        if line.startswith("--") and "=" in line:
            name, _, value = line[2:].partition("=")
            lines[name] = value
    return lines


@dataclasses.dataclass
class RunUnderTest:
    """A GAN generator to evaluate and the settings of the run that trained it."""

    label: str
    run_dir: Optional[str]
    generator_path: str
    generator: Any
    settings: Dict[str, object]      # run_io.RUN_SETTINGS from flags.txt, overridden by the caller
    flag_lines: Dict[str, str]       # every --name=value line of flags.txt
    kind: str                        # the learning-check set (translation_metrics.CHECK_SETS)

    @property
    def task(self) -> Optional[str]:
        return self.settings.get("task")

    @property
    def image_size(self) -> int:
        return int(self.generator.image_size)

    @property
    def expression_names(self) -> Tuple[str, ...]:
        return tuple(self.settings.get("expression_names") or MULTIPIE_EXPRESSIONS)

    @property
    def lighting_names(self) -> Tuple[str, ...]:
        if self.settings.get("lighting_names"):
            return tuple(self.settings["lighting_names"])
        return numbered_names(int(self.settings.get("num_lightings") or MULTIPIE_NUM_LIGHTINGS))

    def attributes(self, class_counts: Mapping[str, int]) -> Tuple[str, ...]:
        return infer_attributes(self.generator.num_labels, class_counts)


def resolve_run(run_dir: Optional[str] = None, generator_path: Optional[str] = None,
                settings: Optional[Mapping[str, object]] = None, kind: Optional[str] = None,
                label: Optional[str] = None) -> RunUnderTest:
    """Reads a run's settings and loads its generator (or `generator_path`); ConfigErrors say what is wrong."""
    if kind is not None and kind not in CHECK_SETS:
        raise ConfigError(f"--kind={kind}: expected one of {', '.join(CHECK_SETS)}.")
    if not run_dir and not generator_path:
        raise ConfigError("give --run_dir=<a GAN run directory> or --generator=<generator.keras>.")
    resolved = read_run_settings(run_dir) if run_dir else {}
    resolved.update({name: value for name, value in (settings or {}).items() if value is not None})
    kind = kind or recipe_check(resolved.get("task"))
    if not generator_path:
        generator_path = os.path.join(run_dir, GENERATOR_FILE)
        if not os.path.isfile(generator_path):
            raise ConfigError(f"--run_dir={run_dir}: it has no {GENERATOR_FILE} (is the GAN run finished?); "
                              "or pass --generator=<file.keras>.")
    generator = load_model(generator_path, "generator", "--generator")
    if not all(hasattr(generator, name) for name in ("image_size", "num_labels")):
        raise ConfigError(f"{generator_path}: a {type(generator).__name__}, not a label-conditioned generator.")
    if resolved.get("image_size") not in (None, generator.image_size):
        raise ConfigError(f"the generator works on {generator.image_size} px images but the flags say "
                          f"--image_size={resolved['image_size']}.")
    if not label:
        label = os.path.basename(os.path.normpath(run_dir)) if run_dir else os.path.basename(generator_path)
    return RunUnderTest(label, run_dir, generator_path, generator, resolved, read_flag_lines(run_dir), kind)


# Which of a recipe's flags name a judge it trained against, and the weight that switches that loss on.
TRAINING_JUDGE_FLAGS = {
    "quality": (("quality_model",), "lambda_qual"),
    "identity": (("identity_model", "identity_weights"), "lambda_id"),
    "depth": (("pretrained_run",), "depth_weight"),
}


def _own_flag(run: RunUnderTest, field: str) -> Tuple[str, str]:
    """(flag name, value) of the run's recipe's `field` (e.g. legan_quality_model); ("", "") without one."""
    if not run.task:
        return "", ""
    name = f"{run.task}_{field}"
    return name, run.flag_lines.get(name, "")


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
    from legan_tf.tasks.depth_pretrain import DEPTH_GENERATOR_FILE

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
            flag, value = _own_flag(run, field)
            if not value:
                continue
            trained = _resolve_training_path(value, run)
            if name == "depth":
                trained = os.path.join(trained, DEPTH_GENERATOR_FILE)
            weight_flag, weight = _own_flag(run, weight_field)
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
            entry["why"] = f"the {run.task or 'unknown'} run names none" if run.task else "no flags.txt to read"
        result[name] = entry
    return result


# --- the metrics of one source --------------------------------------------------------------------

def make_metrics(names: Sequence[str], judges: Judges, used: Mapping[str, dict], class_names_: Mapping,
                 context: Mapping, batch_size: int, seed: int) -> Dict[str, registry.Metric]:
    """The registry's metrics `names` (a "reconstruction/" prefix keeps the metric) with the judges given."""
    built = {}
    for key in names:
        name = key.split("/")[-1]
        # The reference set is FID's and KID's; the others compare row by row or score one set.
        options: Dict[str, Any] = {"context": {k: v for k, v in context.items()
                                               if k != "reference" or name in ("fid", "kid")}}
        if name in ("fid", "kid"):
            if judges.inception_extractor is not None:
                options["extractor"] = judges.inception_extractor
            else:
                options["weights"] = judges.inception.path or None
            if name == "kid":
                options["seed"] = seed
        elif name == "lpips":
            if judges.lpips.model is not None:
                options.update(network=judges.lpips.model, network_source=os.path.abspath(judges.lpips.path))
            options["keep_per_image"] = False
        elif name in ("ssim", "psnr"):
            options["keep_per_image"] = False
        elif name == "match_score":
            options.update(identity_model=judges.identity.model, used_in_training=used["identity"]["used"],
                           identity_source=judges.identity.path and os.path.abspath(judges.identity.path))
        elif name == "quality_score":
            options.update(quality_model=judges.quality.model, used_in_training=used["quality"]["used"],
                           quality_source=judges.quality.path and os.path.abspath(judges.quality.path),
                           keep_scores=False)
        elif name == "generation_rate":
            options.update(classifier=judges.classifier.model, class_names=dict(class_names_),
                           classifier_source=judges.classifier.path and os.path.abspath(judges.classifier.path))
        if name in ("match_score", "quality_score", "generation_rate"):
            options["batch_size"] = batch_size
        built[key] = registry.get(name)(**options)
    return built


def feed(metrics: Mapping[str, registry.Metric], **batch) -> None:
    """One batch to each metric: `reconstruction/<m>` metrics get `reconstruction` as their outputs."""
    plain = {key: value for key, value in batch.items() if key != "reconstruction"}
    for key, metric in metrics.items():
        if key.startswith("reconstruction/"):
            if batch.get("reconstruction") is not None:
                registry.update_all([metric], **{**plain, "outputs": batch["reconstruction"]})
        else:
            registry.update_all([metric], **plain)


def results(metrics: Mapping[str, registry.Metric]) -> Dict[str, registry.MetricResult]:
    return {key: metric.result() for key, metric in metrics.items()}


# --- source 1: the face lab -----------------------------------------------------------------------

@dataclasses.dataclass
class LabSetup:
    """The lab a run trained on, its unseen identities and what the generator controls of it."""

    lab: Any
    lab_args: Dict[str, object]
    attributes: Tuple[str, ...]
    label_sizes: Dict[str, int]
    identities: List[int]

    @property
    def names(self) -> Dict[str, List[str]]:
        return class_names(self.lab)

    def description(self, num_faces: int, seed: int) -> dict:
        return {"source": "face lab, unseen identities, exact target renders as paired truth",
                "lab": {name: value for name, value in self.lab_args.items() if name != "subjects"},
                "identities": [self.identities[0], self.identities[-1]], "num_faces": num_faces, "seed": seed,
                "attributes": list(self.attributes),
                "edits": "both: every controlled attribute changed to another value drawn uniformly "
                         "(translation_metrics.draw_edits)"}


def prepare_lab(run: RunUnderTest, lab_overrides: Optional[Mapping[str, object]] = None,
                attributes: Optional[Sequence[str]] = None, first_identity: int = DEFAULT_FIRST_IDENTITY,
                num_identities: int = 20, classifier=None, classifier_path: str = "",
                require_lab_json: bool = False) -> LabSetup:
    """The face lab of the run (lab.json beside its data_path, then `lab_overrides`), checked against the
    generator and, when given, the classifier. With `require_lab_json`, a run that did not train on the
    lab is a ConfigError (the caller reports the lab source unavailable)."""
    from legan_tf.data.synthetic.render import FaceLab

    image_size = run.image_size
    if classifier is not None and classifier.image_size != image_size:
        raise ConfigError(f"size mismatch: the classifier {classifier_path} works on {classifier.image_size} px "
                          f"images, the generator on {image_size} px; train the classifier at {image_size} px "
                          f"(--image_size={image_size}).")
    expression_names = run.expression_names
    num_lightings = len(run.lighting_names)
    lab_args = lab_settings(run.settings.get("data_path"), lab_overrides or {}, expression_names, num_lightings,
                            image_size)
    if require_lab_json and not lab_args["lab_json"]:
        raise ConfigError("the run did not train on the face lab (no lab.json beside its data_path "
                          f"{run.settings.get('data_path')}): no unseen faces with exact targets")
    try:
        lab = FaceLab(lab_args["image_size"], lab_args["expression_set"], lab_args["num_lightings"],
                      lab_args["seed"], lab_args["ambient"])
    except ValueError as error:
        raise ConfigError(f"the face lab cannot be built from these settings: {error}") from None
    if tuple(lab.expression_names) != expression_names:
        raise ConfigError(f"the lab's expressions ({','.join(lab.expression_names)}) are not the run's "
                          f"({','.join(expression_names)}), so the label ids would mean other classes.")
    # RGB-depth runs have no lighting labels: the lab's lights are only the faces' nuisance then.
    if lab.num_lightings != num_lightings and lab_args["part"] != "rgbd":
        raise ConfigError(f"the lab has {lab.num_lightings} lights, the run {num_lightings}.")
    class_counts = {"expression": lab.num_expressions, "lighting": lab.num_lightings}
    attributes = tuple(attributes) if attributes else run.attributes(class_counts)
    if set(attributes) - set(ATTRIBUTES):
        raise ConfigError(f"--attributes={','.join(attributes)}: expected names from {', '.join(ATTRIBUTES)}.")
    label_sizes = {name: class_counts[name] for name in attributes}
    if sum(label_sizes.values()) != run.generator.num_labels:
        raise ConfigError(f"the generator takes {run.generator.num_labels} labels, but {label_sizes} make "
                          f"{sum(label_sizes.values())}.")
    if classifier is not None:
        missing_heads = {name: count for name, count in label_sizes.items()
                         if classifier.head_classes.get(name) != count}
        if missing_heads:
            raise ConfigError(f"{classifier_path}: its heads {classifier.head_classes} do not cover {missing_heads}.")
    identities = list(range(first_identity, first_identity + num_identities))
    seen = sorted(set(identities) & set(lab_args["subjects"]))
    if seen:
        raise ConfigError(f"identities {seen[0]}..{seen[-1]} are in the lab the models trained on; pick "
                          "--first_identity beyond its subjects so the faces are unseen.")
    return LabSetup(lab, lab_args, attributes, label_sizes, identities)


class _NoClassifier:
    """Stands in for the classifier when none is given: the translation figures are then dropped."""

    def __init__(self, counts: Mapping[str, int]):
        self.counts = dict(counts)

    def __call__(self, images):
        return {name: np.zeros((len(images), count), np.float32) for name, count in self.counts.items()}


@dataclasses.dataclass
class LabPass:
    """What one pass over the lab gives: the learning-check figures and the registry's metrics."""

    figures: Any                                  # translation_metrics.TranslationFigures
    metrics: Dict[str, registry.MetricResult]     # on the joint edits
    baselines: Dict[str, Dict[str, registry.MetricResult]]
    verdict: List[tuple]
    classifier_given: bool


def lab_pass(run: RunUnderTest, setup: LabSetup, judges: Judges, num_faces: int = DEFAULT_NUM_FACES,
             seed: int = 0, batch_size: int = 64, progress: bool = True, sample_rows: int = 4,
             metric_names: Sequence[str] = LAB_METRICS, baselines: bool = False,
             used: Optional[Mapping[str, dict]] = None) -> LabPass:
    """Translates the lab draw once: translation_figures' learning-check figures (edit modes, kept
    breakdown, sample rows, depth consistency with judges.depth), and on the joint edits the registry's
    `metric_names` against the exact targets (and the baselines' metrics when `baselines`)."""
    lab, attributes, image_size = setup.lab, setup.attributes, run.image_size
    modes = edit_modes(attributes)
    mode_names = list(modes)
    identity, source, new = draw_edits(lab, setup.identities, num_faces, seed)
    if used is None:
        used = judges_used_in_training(run, judges)
    context = {"source": LAB, "model": run.label,
               "reference": "the exact renders of the targets (real lab faces of the target classes), "
                            f"{num_faces} joint edits of identities {setup.identities[0]}..{setup.identities[-1]}"}
    metric_set = make_metrics(metric_names, judges, used, setup.names, context, batch_size, seed)
    baseline_sets = {}
    if baselines:
        baseline_context = {**context, "model": None}
        baseline_sets = {
            BASELINE_REAL_FACES: make_metrics(("match_score", "quality_score", "generation_rate"), judges, used,
                                              setup.names, baseline_context, batch_size, seed),
            BASELINE_INPUT: make_metrics(("fid", "kid", "lpips", "ssim", "psnr"), judges, used, setup.names,
                                         baseline_context, batch_size, seed),
        }
    translate = generator_translate_fn(run.generator, setup.label_sizes, batch_size)
    calls = [0]

    def translate_and_score(images: np.ndarray, targets: Dict[str, np.ndarray]) -> np.ndarray:
        chunk, mode_index = divmod(calls[0], len(mode_names))
        calls[0] += 1
        mode = mode_names[mode_index]
        rows = slice(chunk * batch_size, chunk * batch_size + len(images))
        expected = mode_targets({k: v[rows] for k, v in source.items()}, {k: v[rows] for k, v in new.items()},
                                modes[mode])
        if any(not np.array_equal(targets[name], expected[name]) for name in attributes):
            raise RuntimeError("translation_figures no longer translates the draw chunk by chunk, mode by mode; "
                               "evaluate.lab_pass must follow it")
        outputs = np.asarray(translate(images, targets), np.float32)
        if mode == BOTH and (metric_set or baseline_sets):
            truth = render_model_faces(lab, identity[rows], expected, image_size)[0]
            labels = {name: expected[name] for name in attributes}
            feed(metric_set, outputs=outputs, reals=truth, inputs=images, targets_paired=truth, target_labels=labels)
            if baseline_sets:
                feed(baseline_sets[BASELINE_REAL_FACES], outputs=truth, reals=truth, inputs=images,
                     target_labels=labels)
                feed(baseline_sets[BASELINE_INPUT], outputs=images, reals=truth, targets_paired=truth)
        return outputs

    geometry_fn, geometry = None, "depth"
    if judges.depth.model is not None:
        judge = judges.depth.model
        if judge.image_size != image_size:
            raise ConfigError(f"--depth_judge={judges.depth.path} works on {judge.image_size} px images, the "
                              f"generator on {image_size} px.")
        geometry = judge.geometry
        geometry_fn = _batched(judge, batch_size)
    classifier = judges.classifier.model
    figures = translation_figures(translate_and_score, lab, classifier or _NoClassifier(setup.label_sizes),
                                  setup.identities, num_faces, seed, attributes, image_size, batch_size, progress,
                                  sample_rows, geometry_fn, geometry)
    verdict = learning_check_verdict(figures.metrics, run.kind) if classifier is not None else []
    return LabPass(figures, results(metric_set), {name: results(group) for name, group in baseline_sets.items()},
                   verdict, classifier is not None)


def translation_record(run: RunUnderTest, setup: LabSetup, judges: Judges, result: LabPass, seed: int) -> dict:
    """The learning check's JSON record (translation_metrics.json of scripts/evaluate_translation.py)."""
    verdict = result.verdict
    return {
        "generator": os.path.abspath(run.generator_path),
        "classifier": os.path.abspath(judges.classifier.path) if judges.classifier.path else None,
        "depth_judge": os.path.abspath(judges.depth.path) if judges.depth.path else None,
        "task": run.task,
        "kind": run.kind,
        "attributes": list(setup.attributes),
        "image_size": run.image_size,
        "lab": {name: value for name, value in setup.lab_args.items() if name != "subjects"},
        "identities": [setup.identities[0], setup.identities[-1]],
        "seed": seed,
        "metrics": result.figures.metrics,
        "verdict": [{"name": name, "value": value, "target": target, "passed": passed}
                    for name, value, target, passed in verdict],
        "passed": all(passed for *_, passed in verdict),
        "kept_breakdown": kept_breakdown(result.figures.kept_counts, setup.names),
    }


def _batched(network, batch_size: int):
    """numpy images -> numpy outputs of `network`, `batch_size` at a time."""

    def run(images):
        return np.concatenate([np.asarray(network(images[start:start + batch_size]))
                               for start in range(0, len(images), batch_size)])

    return run


# --- source 2: real faces -------------------------------------------------------------------------

def _run_data_config(run: RunUnderTest):
    """The run's DataConfig from its flags.txt (None without a run directory)."""
    from absl import flags

    from legan_tf.data import data_config_from_flags, define_data_flags
    from legan_tf.training.run_dir import parse_run_flags

    if not run.run_dir:
        return None
    run_flags = flags.FlagValues()
    define_data_flags(run_flags)
    parse_run_flags(run.run_dir, run_flags)
    if run_flags.data_format is None or run_flags.data_path is None:
        return None
    return data_config_from_flags(run_flags)


def open_real_faces(run: RunUnderTest, real: Optional[str] = None, real_format: Optional[str] = None):
    """(source, description) of the real faces to translate: `real` (a manifest or a folder, read with the
    run's image size, label names and preprocessing) or the run's held-out split. Raises ConfigError when
    there are none (the caller reports the source unavailable) and DataError for unreadable data."""
    from legan_tf.data import DataConfig, open_source
    from legan_tf.data.tfrecord import METADATA_FILE

    config = _run_data_config(run)
    if real:
        if real_format is None:
            if os.path.isdir(real):
                real_format = "tfrecord" if os.path.isfile(os.path.join(real, METADATA_FILE)) else "folder"
            else:
                real_format = config.data_format if config and config.data_format in ("multipie", "csv", "rgbd") \
                    else "multipie"
        base = config or DataConfig(real_format, real, image_size=run.image_size,
                                    expression_names=run.expression_names, lighting_names=run.lighting_names)
        config = dataclasses.replace(base, data_format=real_format, data_path=real, holdout_fraction=0.0,
                                     cache=False, image_size=run.image_size)
        source = open_source(config)
        kind = f"--real={real} ({real_format}), every face"
    else:
        if config is None:
            raise ConfigError("no real faces: give --real=<a manifest or folder of real faces> (the run's flags.txt "
                              "names no data to reopen)")
        if config.holdout_fraction <= 0:
            raise ConfigError(f"no real faces: the run trained on all of {config.data_path} (--holdout_fraction=0), "
                              "so it held out none; give --real=<faces it never saw>")
        source = open_source(config).split(config.holdout_fraction, config.split_seed)[1]
        kind = (f"the run's held-out split of {config.data_path} ({config.data_format}, holdout_fraction "
                f"{config.holdout_fraction}, split_seed {config.split_seed}): identities it never trained on")
    description = {"source": "real faces, unpaired", "faces_from": kind, "data_format": config.data_format,
                   "data_path": os.path.abspath(config.data_path), "image_size": config.image_size,
                   "apply_mask": config.apply_mask, "available_faces": source.num_examples,
                   "labels": sorted(source.label_names)}
    return source, description


def read_real_faces(source, attributes: Sequence[str], limit: int, seed: int, batch_size: int = 64):
    """(images, labels, indices): a seeded uniform choice of at most `limit` faces of `source` (all when
    `limit` is 0 or more than there are), in file order, with their labels of `attributes` that the data carry."""
    count = source.num_examples
    if count == 0:
        raise ConfigError("no real faces: the split is empty")
    rng = np.random.default_rng([seed, 1])
    chosen = np.arange(count) if not limit or limit >= count else np.sort(rng.choice(count, limit, replace=False))
    keep = np.zeros(count, bool)
    keep[chosen] = True
    images, labels, seen = [], {name: [] for name in attributes if name in source.label_names}, 0
    for batch in source.dataset(batch_size, training=False, repeat=False):
        size = int(batch["image"].shape[0])
        rows = keep[seen:seen + size]
        seen += size
        if rows.any():
            images.append(batch["image"].numpy()[rows])
            for name in labels:
                labels[name].append(batch[name].numpy()[rows].astype(np.int64))
    return (np.concatenate(images).astype(np.float32), {name: np.concatenate(parts) for name, parts in labels.items()},
            chosen)


def draw_real_targets(labels: Mapping[str, np.ndarray], attributes: Sequence[str], class_counts: Mapping[str, int],
                      count: int, seed: int) -> Tuple[Dict[str, np.ndarray], int]:
    """(targets, unchanged): each face gets the labels of another face of the set (a seeded permutation),
    so that outputs and reals share their class mix; faces whose target equals their own labels are
    swapped with a face for which both then differ, where one exists (`unchanged` counts the rest).
    Attributes the data do not label are drawn uniformly."""
    rng = np.random.default_rng([seed, 2])
    order = rng.permutation(count)
    present = [name for name in attributes if name in labels]
    if present:
        joint = np.stack([np.asarray(labels[name]) for name in present], axis=1)

        def same(i, j):  # would face i given face j's labels keep its own?
            return bool(np.array_equal(joint[i], joint[j]))

        for i in range(count):
            if not same(i, order[i]):
                continue
            for j in rng.permutation(count):
                if not same(i, order[j]) and not same(j, order[i]):
                    order[i], order[j] = order[j], order[i]
                    break
        unchanged = sum(same(i, order[i]) for i in range(count))
    else:
        unchanged = 0
    targets = {name: np.asarray(labels[name])[order] if name in labels
               else rng.integers(0, class_counts[name], count) for name in attributes}
    return targets, int(unchanged)


@dataclasses.dataclass
class RealPass:
    description: dict
    metrics: Dict[str, registry.MetricResult]
    baselines: Dict[str, Dict[str, registry.MetricResult]]
    samples: Dict[str, Any]
    names: Dict[str, List[str]]


def real_names(run: RunUnderTest, attributes: Sequence[str]) -> Dict[str, List[str]]:
    names = {"expression": list(run.expression_names), "lighting": [f"l{name}" for name in run.lighting_names]}
    return {name: names[name] for name in attributes}


def real_pass(run: RunUnderTest, judges: Judges, faces: Tuple[Any, dict], num_real: int = DEFAULT_NUM_REAL,
              seed: int = 0, batch_size: int = 64, progress: bool = True, sample_rows: int = 4,
              baselines: bool = False, used: Optional[Mapping[str, dict]] = None,
              attributes: Optional[Sequence[str]] = None) -> RealPass:
    """Translates real faces (`faces`: open_real_faces' source and description) to the labels of others of
    the set and back, and scores them (module docstring)."""
    source, description = faces[0], dict(faces[1])
    class_counts = {"expression": len(run.expression_names), "lighting": len(run.lighting_names)}
    attributes = tuple(attributes) if attributes else run.attributes(class_counts)
    label_sizes = {name: class_counts[name] for name in attributes}
    names = real_names(run, attributes)
    images, labels, chosen = read_real_faces(source, attributes, num_real, seed, batch_size)
    targets, unchanged = draw_real_targets(labels, attributes, class_counts, len(images), seed)
    reconstructs = all(name in labels for name in attributes)
    description.update(
        num_faces=len(images), seed=seed, attributes=list(attributes),
        selection="all" if len(chosen) == source.num_examples else f"a seeded uniform choice of {len(images)}",
        targets="the labels of another face of the set (a seeded permutation, fixed points moved): outputs and "
                "reals have the same class mix" + "".join(f"; {name}: not labelled in the data, drawn uniformly"
                                                          for name in attributes if name not in labels),
        faces_left_at_their_own_labels=unchanged,
        reconstruction="G(G(x, target), own labels) against x" if reconstructs
        else "none: the data do not label every attribute the generator takes")
    if used is None:
        used = judges_used_in_training(run, judges)
    context = {"source": REAL, "model": run.label,
               "reference": f"the {len(images)} real faces translated (same class mix as the targets): "
                            f"{description['faces_from']}"}
    metric_set = make_metrics(REAL_METRICS if reconstructs else REAL_METRICS[:5], judges, used, names, context,
                              batch_size, seed)
    baseline_set = make_metrics(("quality_score", "generation_rate"), judges, used, names,
                                {**context, "model": None}, batch_size, seed) if baselines else {}
    translate = generator_translate_fn(run.generator, label_sizes, batch_size)
    # Sample rows spread evenly over the set (file order groups a person's faces together).
    shown = np.unique(np.linspace(0, len(images) - 1, min(sample_rows, len(images))).round().astype(int))
    parts = []
    for start in tqdm(range(0, len(images), batch_size), desc=f"{run.label}: real faces", unit="batch",
                      disable=not progress, file=sys.stderr):
        rows = slice(start, start + batch_size)
        inputs = images[rows]
        batch_targets = {name: values[rows] for name, values in targets.items()}
        outputs = np.asarray(translate(inputs, batch_targets), np.float32)
        reconstruction = None
        if reconstructs:
            reconstruction = np.asarray(translate(outputs, {name: labels[name][rows] for name in attributes}),
                                        np.float32)
        feed(metric_set, outputs=outputs, reals=inputs, inputs=inputs, target_labels=batch_targets,
             targets_paired=inputs, reconstruction=reconstruction)
        if baseline_set:
            own = {name: labels[name][rows] for name in attributes if name in labels}
            feed(baseline_set, outputs=inputs, target_labels=own if own else None)
        take = shown[(shown >= start) & (shown < start + len(inputs))] - start
        if len(take):
            parts.append({"inputs": inputs[take], "outputs": outputs[take],
                          "reconstruction": None if reconstruction is None else reconstruction[take],
                          "targets": {name: values[take] for name, values in batch_targets.items()},
                          "source": {name: labels[name][rows][take] for name in attributes if name in labels}})
    samples = {key: (None if parts[0][key] is None else
                     {name: np.concatenate([part[key][name] for part in parts]) for name in parts[0][key]}
                     if isinstance(parts[0][key], dict) else np.concatenate([part[key] for part in parts]))
               for key in parts[0]}
    return RealPass(description, results(metric_set),
                    {BASELINE_REAL_FACES: results(baseline_set)} if baseline_set else {}, samples, names)


# --- the whole evaluation -------------------------------------------------------------------------

def parse_compare(entries: Sequence[str]) -> List[Tuple[Optional[str], str]]:
    """`label=path` or `path` entries -> (label or None, path)."""
    parsed = []
    for entry in entries or ():
        label, _, path = entry.rpartition("=")
        parsed.append((label or None, path))
    return parsed


def _source_key(description: Mapping) -> str:
    """Two models share a baseline row when their sources are the same faces and draw."""
    return json.dumps({key: value for key, value in description.items()}, sort_keys=True, default=str)


def _results_json(group: Mapping[str, registry.MetricResult]) -> Dict[str, dict]:
    return {key: result.to_json() for key, result in group.items()}


@dataclasses.dataclass
class ModelEvaluation:
    """One model's evaluation in memory (metrics.json holds its JSON side; the figures read the rest)."""

    run: RunUnderTest
    used: Dict[str, dict]
    record: dict
    lab: Optional[LabPass] = None
    lab_setup: Optional[LabSetup] = None
    real: Optional[RealPass] = None


def evaluate(run_dir: str, compare: Sequence[str] = (), judges: Optional[Judges] = None, label: Optional[str] = None,
             real: Optional[str] = None, real_format: Optional[str] = None, sources: Sequence[str] = SOURCES,
             num_faces: int = DEFAULT_NUM_FACES, num_real: int = DEFAULT_NUM_REAL,
             first_identity: int = DEFAULT_FIRST_IDENTITY, num_identities: int = 20, seed: int = 0,
             batch_size: int = 64, sample_rows: int = 6, lab_overrides: Optional[Mapping[str, object]] = None,
             output_dir: Optional[str] = None, progress: bool = True, command: Optional[str] = None) -> dict:
    """Evaluates `run_dir` and the `compare` runs (`label=path` or `path`) on the sources that their inputs
    allow; writes metrics.json, report.md and the figures to `output_dir` (default <run_dir>/evaluation).
    Returns the metrics.json content plus "output_dir" and "files"."""
    from legan_tf.evaluation import report

    judges = judges or Judges()
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown or not sources:
        raise ConfigError(f"--sources={','.join(sources)}: expected names from {', '.join(SOURCES)}.")
    for name, value in (("num_faces", num_faces), ("num_identities", num_identities), ("batch_size", batch_size),
                        ("sample_rows", sample_rows)):
        if value < 1:
            raise ConfigError(f"--{name}={value} must be positive.")
    if num_real < 0:
        raise ConfigError(f"--num_real={num_real} must be 0 (all) or positive.")
    entries = [(label, run_dir)] + parse_compare(compare)
    runs = [resolve_run(path, label=name) for name, path in entries]
    labels = [run.label for run in runs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two runs share a label ({', '.join(labels)}); name them with --compare=label=path.")

    evaluations: List[ModelEvaluation] = []
    baselines: Dict[Tuple[str, str], dict] = {}
    for run in runs:
        used = judges_used_in_training(run, judges)
        record = {"label": run.label, "run_dir": os.path.abspath(run.run_dir) if run.run_dir else None,
                  "generator": os.path.abspath(run.generator_path), "generator_sha256": file_digest(run.generator_path),
                  "task": run.task, "kind": run.kind, "image_size": run.image_size,
                  "judges_used_in_training": used, "sources": {}}
        evaluation = ModelEvaluation(run, used, record)
        if LAB in sources:
            try:
                setup = prepare_lab(run, lab_overrides, None, first_identity, num_identities,
                                    judges.classifier.model, judges.classifier.path, require_lab_json=True)
            except ConfigError as error:
                if "no lab.json" not in str(error):
                    raise
                record["sources"][LAB] = {"available": False, "reason": str(error)}
            else:
                description = setup.description(num_faces, seed)
                key = (LAB, _source_key(description))
                result = lab_pass(run, setup, judges, num_faces, seed, batch_size, progress, sample_rows,
                                  baselines=key not in baselines, used=used)
                if key not in baselines:
                    baselines[key] = {"source": LAB, "description": description, "models": [],
                                      "rows": {name: _results_json(group) for name, group in result.baselines.items()}}
                baselines[key]["models"].append(run.label)
                record["attributes"] = list(setup.attributes)
                record["sources"][LAB] = {
                    "available": True, "description": description, "metrics": _results_json(result.metrics),
                    "translation": translation_record(run, setup, judges, result, seed) if result.classifier_given
                    else None,
                    "translation_reason": None if result.classifier_given else
                    "no --classifier given: the learning-check figures need an independent attribute classifier"}
                evaluation.lab, evaluation.lab_setup = result, setup
        if REAL in sources:
            try:
                faces = open_real_faces(run, real, real_format)
            except ConfigError as error:
                if not str(error).startswith("no real faces"):
                    raise
                record["sources"][REAL] = {"available": False, "reason": str(error)}
            else:
                key = (REAL, _source_key({**faces[1], "num_real": num_real, "seed": seed,
                                          "num_labels": run.generator.num_labels}))
                result = real_pass(run, judges, faces, num_real, seed, batch_size, progress, sample_rows,
                                   baselines=key not in baselines, used=used)
                if key not in baselines:
                    baselines[key] = {"source": REAL, "description": result.description, "models": [],
                                      "rows": {name: _results_json(group) for name, group in result.baselines.items()}}
                baselines[key]["models"].append(run.label)
                record.setdefault("attributes", list(result.names))
                record["sources"][REAL] = {"available": True, "description": result.description,
                                           "metrics": _results_json(result.metrics)}
                evaluation.real = result
        evaluations.append(evaluation)

    output_dir = output_dir or os.path.join(run_dir, EVALUATION_DIR)
    os.makedirs(output_dir, exist_ok=True)
    content = {
        "format": FORMAT_VERSION,
        "command": command,
        "seed": seed,
        "protocol": protocol_summary(num_faces, num_real, seed),
        "judges": judges.records(),
        "models": [evaluation.record for evaluation in evaluations],
        "baselines": list(baselines.values()),
        "references": report.PAPER_REFERENCES,
    }
    with open(os.path.join(output_dir, METRICS_JSON), "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=1, allow_nan=False)
    figures = report.write_figures(evaluations, output_dir)
    report_path = report.write_report(content, figures, output_dir)
    files = [os.path.join(output_dir, METRICS_JSON), report_path,
             *[os.path.join(output_dir, name) for name in figures.values()]]
    return {**content, "output_dir": output_dir, "files": files}


def protocol_summary(num_faces: int, num_real: int, seed: int) -> dict:
    """The protocol in words, stored with every evaluation (each metric's own protocol is in its result)."""
    return {
        "seed": seed,
        "lab": f"{num_faces} faces of unseen lab identities, every controlled attribute changed (mode 'both'); "
               "paired truth: the exact render of the target; FID/KID reference: those exact renders",
        "real": ("every real face" if not num_real else f"up to {num_real} real faces (a seeded choice)")
                + ", each translated to the labels of another "
                "face of the set; FID/KID reference: the same real faces (the whole set, one distance over all "
                "classes: outputs and reals have the same class mix; per-class FIDs would need thousands of faces "
                "per class); reconstruction: translated back to the face's own labels and compared with it",
        "fid": "Inception-v3 pool features (2048) of images rounded to 8-bit levels, resized to 299 px "
               "(bilinear, antialiased), in [-1, 1]; Frechet distance; KID: unbiased MMD^2, cubic kernel, "
               "jackknife standard error",
        "ssim_psnr": "per pair on [0, 1] (max_val 1), 11x11 Gaussian window sigma 1.5 (tf.image.ssim)",
        "lpips": "LPIPS v0.1 from a local .npz, at the images' own size",
        "match_score": "cosine similarity of identity embeddings of input and output",
        "quality_score": "mean Q (1-10) of the outputs; of the real faces beside it",
        "generation_rate": "argmax of the independent classifier on the outputs against the target labels, "
                           "per attribute and per target class",
    }


def read_translation_figures(path: str) -> List[Tuple[str, Dict[str, float]]]:
    """(label, learning-check metrics) from a translation_metrics.json, an evaluate.py metrics.json (one entry
    per model with lab figures), or a run directory holding evaluation/ with either."""
    from legan_tf.evaluation.run_io import METRICS_FILE

    candidates = [path]
    if os.path.isdir(path):
        candidates = [os.path.join(path, EVALUATION_DIR, name) for name in (METRICS_FILE, METRICS_JSON)]
    found = next((candidate for candidate in candidates if os.path.isfile(candidate)), None)
    if found is None:
        raise ConfigError(f"{path}: no translation metrics here; run scripts/evaluate_translation.py first "
                          "(or scripts/evaluate.py).")
    with open(found) as handle:
        try:
            content = json.load(handle)
        except json.JSONDecodeError:
            content = None
    if isinstance(content, dict) and isinstance(content.get("metrics"), dict):
        return [(None, content["metrics"])]
    if isinstance(content, dict) and isinstance(content.get("models"), list):
        rows = []
        wanted = os.path.realpath(path) if os.path.isdir(path) else None
        for model in content["models"]:
            translation = (model.get("sources", {}).get(LAB) or {}).get("translation")
            if not translation:
                continue
            if wanted and model.get("run_dir") and os.path.realpath(model["run_dir"]) != wanted:
                continue
            rows.append((model["label"], translation["metrics"]))
        if rows:
            return rows
        raise ConfigError(f"{found}: no model in it has learning-check figures (lab source with a classifier).")
    raise ConfigError(f"{found}: not a {METRICS_FILE} of scripts/evaluate_translation.py nor a {METRICS_JSON} "
                      "of scripts/evaluate.py.")


def safe_name(label: str) -> str:
    """A label as a file-name part."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "model"
