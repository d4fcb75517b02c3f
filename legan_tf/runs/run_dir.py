"""The run directory: its layout, its writing and its reading, in one place.

    <root>/<name>-<YYYYmmdd-HHMMSS>/
        flags.txt        resolved flags; `--flagfile=flags.txt` starts the same run again, and
                         `--resume=<run dir>` continues the run with them
        labels.json      the training data's label names, in label-vector order
        checkpoints/     the trainer's checkpoints
        logs/            TensorBoard event files (scalars and sample grids); scalars.jsonl, the same
                         scalars as JSON lines
        samples/         sample grids as PNG (step_NNNNNNN.png)
        metrics.jsonl    one JSON line per held-out evaluation; metrics.json the latest
        <role>.keras     the trained networks (generator.keras, attribute_classifier.keras, ...)
        evaluation/      what the evaluation tools write about the run

Everything else in the package asks this module for these files: training writes them through a
`RunDir`, and the export, evaluation, augmentation and photo tools read them through one.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from typing import Dict, Mapping, Optional, Sequence, Tuple

from absl import flags, logging

from legan_tf.errors import ConfigError
from legan_tf.labels import ATTRIBUTES as LABEL_ATTRIBUTES
from legan_tf.runs.settings import TrainingSettings, not_recorded

FLAGS_FILE = "flags.txt"
LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.json"
METRICS_LOG_FILE = "metrics.jsonl"
SCALARS_LOG_FILE = "scalars.jsonl"  # in logs/
TF_CHECKPOINT_INDEX = "checkpoint"  # the file tf.train.CheckpointManager keeps beside its checkpoints
_JAX_CHECKPOINT = re.compile(r"^jax-ckpt-(\d+)\.npz$")
CHECKPOINTS_DIR = "checkpoints"
LOGS_DIR = "logs"
SAMPLES_DIR = "samples"
EVALUATION_DIR = "evaluation"
SUBDIRS = (CHECKPOINTS_DIR, LOGS_DIR, SAMPLES_DIR)
# The networks a run exports, by role: the file is <role>.keras.
# The roles of the project's recipes; a new recipe may export networks in roles of its own.
MODEL_ROLES = ("generator", "generator_raw", "discriminator", "attribute_classifier", "quality_model",
               "identity_model", "depth_generator", "depth_discriminator")
_ROLE = re.compile(r"^[a-z][a-z0-9_]*$")
# Flags that say where or whether to run, not what to run: left out of flags.txt, so that it starts
# a new run of the same configuration rather than resuming or dry-running.
NOT_REPRODUCED = frozenset({"flagfile", "run_name_suffix"}) | not_recorded()


def model_file(role: str) -> str:
    """The file name of the network a run exports in `role` ("generator" -> "generator.keras")."""
    if not _ROLE.match(role):
        raise ValueError(f"model role {role!r}: a role is a lower-case name such as {', '.join(MODEL_ROLES[:3])}")
    return f"{role}.keras"


class RunDir:
    """One run directory. `RunDir.create` makes a new one, `RunDir.open` checks an existing one."""

    def __init__(self, path: str):
        self.path = str(path)

    def __repr__(self):
        return f"RunDir({self.path!r})"

    def __fspath__(self):
        return self.path

    # -- making and opening ----------------------------------------------------------------------

    @classmethod
    def create(cls, root: str, name: str, now: Optional[datetime.datetime] = None) -> "RunDir":
        """Creates `<root>/<name>-<timestamp>` with its subfolders, checking that it takes files."""
        stamp = (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
        path, suffix = os.path.join(root, f"{name}-{stamp}"), 0
        try:
            os.makedirs(root, exist_ok=True)
            while True:
                try:
                    os.mkdir(path)  # atomic: of two runs started in the same second, one gets the next suffix
                    break
                except FileExistsError:
                    suffix += 1
                    path = os.path.join(root, f"{name}-{stamp}-{suffix}")
            for subdir in SUBDIRS:
                os.makedirs(os.path.join(path, subdir))
            probe = os.path.join(path, ".write-test")
            with open(probe, "w") as handle:  # a folder that exists but takes no files fails here, not mid-run
                handle.write("ok")
            os.remove(probe)
        except OSError as error:
            raise ConfigError(f"--runs_root={root}: cannot create the run directory {path} "
                              f"({error.strerror or error}).") from None
        return cls(path)

    @classmethod
    def open(cls, path: str, flag: str = "--run_dir", allow_pretrained: bool = False) -> "RunDir":
        """An existing run directory (one holding flags.txt); with `allow_pretrained`, also a shipped model
        (`pretrained:<name>`, whose folder is shaped as a run directory: for readers that write nothing
        into it). A ConfigError naming `flag` otherwise."""
        from legan_tf import pretrained

        if pretrained.is_pretrained(path):
            if not allow_pretrained:
                raise ConfigError(f"{flag}={path}: a shipped model is read by edit, export and serve; this command "
                                  "writes into a run directory: give one of your own runs")
            name = path
            path = pretrained.folder(name, flag)
            pretrained.verify(name)
        if not path or not os.path.isdir(path):
            raise ConfigError(f"{flag}={path}: no such run directory.")
        if not os.path.isfile(os.path.join(path, FLAGS_FILE)):
            raise ConfigError(f"{flag}={path}: not a run directory (it has no {FLAGS_FILE}).")
        return cls(path)

    @classmethod
    def for_resume(cls, path: str) -> "RunDir":
        """The run directory given to --resume, with its subfolders present and writable."""
        run = cls.open(path, "--resume")
        try:
            for subdir in SUBDIRS:
                os.makedirs(os.path.join(path, subdir), exist_ok=True)
        except OSError as error:
            raise ConfigError(f"--resume={path}: cannot write into the run directory "
                              f"({error.strerror or error}).") from None
        return run

    # -- the layout --------------------------------------------------------------------------------

    def file(self, *parts: str) -> str:
        return os.path.join(self.path, *parts)

    @property
    def name(self) -> str:
        return os.path.basename(os.path.normpath(self.path))

    @property
    def checkpoints_dir(self) -> str:
        return self.file(CHECKPOINTS_DIR)

    @property
    def logs_dir(self) -> str:
        return self.file(LOGS_DIR)

    @property
    def samples_dir(self) -> str:
        return self.file(SAMPLES_DIR)

    @property
    def evaluation_dir(self) -> str:
        return self.file(EVALUATION_DIR)

    def sample_path(self, step: int) -> str:
        return self.file(SAMPLES_DIR, f"step_{step:07d}.png")

    # Checkpoints: TensorFlow's CheckpointManager keeps its own files (ckpt-<step>.* and an index file
    # named "checkpoint") in checkpoints_dir; the JAX backend writes jax-ckpt-<step>.npz there.

    def worker_checkpoints_dir(self, worker: int) -> str:
        """Where a non-chief worker of a TensorFlow cluster writes its checkpoint copy (tf.distribute needs
        every worker to write one; only the chief's is kept)."""
        return self.file(CHECKPOINTS_DIR, f"worker-tmp-{worker}")

    def has_tensorflow_checkpoints(self) -> bool:
        return os.path.isfile(self.file(CHECKPOINTS_DIR, TF_CHECKPOINT_INDEX))

    def checkpoints_backend(self) -> Optional[str]:
        """The Keras backend whose checkpoints the run holds ("tensorflow" or "jax"), or None before any."""
        if self.has_tensorflow_checkpoints():
            return "tensorflow"
        return "jax" if self.jax_checkpoints() else None

    def jax_checkpoint_path(self, step: int) -> str:
        return self.file(CHECKPOINTS_DIR, f"jax-ckpt-{step:08d}.npz")

    def jax_checkpoints(self) -> list:
        """[(step, path)] of the JAX backend's complete checkpoints, oldest first."""
        found = []
        for name in (os.listdir(self.checkpoints_dir) if os.path.isdir(self.checkpoints_dir) else ()):
            match = _JAX_CHECKPOINT.match(name)
            if match:
                found.append((int(match.group(1)), self.file(CHECKPOINTS_DIR, name)))
        return sorted(found)

    @property
    def scalars_path(self) -> str:
        return self.file(LOGS_DIR, SCALARS_LOG_FILE)

    def append_scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Adds one line {"step": step, name: value, ...} to logs/scalars.jsonl (what TensorBoard shows, for
        reading without it)."""
        record = {"step": int(step), **{name: float(value) for name, value in values.items()}}
        with open(self.scalars_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    # -- flags.txt ---------------------------------------------------------------------------------

    @property
    def flags_path(self) -> str:
        return self.file(FLAGS_FILE)

    def write_flags(self, values: Mapping[str, object]) -> str:
        """Writes flags.txt from flag values; when it already holds other lines (a resume with changed
        flags), says which and keeps the old file as flags.before-<timestamp>.txt."""
        path = self.flags_path
        text = flagfile_text(values)
        if os.path.exists(path):
            previous = _read_text(path)
            if previous != text:
                changed = sorted(set(previous.splitlines()) ^ set(text.splitlines()))
                logging.warning("Resuming with changed flags (old and new lines): %s", "; ".join(changed))
                stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
                os.replace(path, self.file(f"flags.before-{stamp}.txt"))
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    def flag_lines(self) -> Dict[str, str]:
        """Every `--name=value` line of flags.txt as name -> value (a boolean line as "true"/"false");
        {} when there is no flags.txt."""
        if not os.path.isfile(self.flags_path):
            return {}
        lines = {}
        for line in _read_text(self.flags_path).splitlines():
            line = line.strip()
            if not line.startswith("--"):
                continue
            name, equals, value = line[2:].partition("=")
            if equals:
                lines[name] = value
            elif name.startswith("no"):
                lines[name[2:]] = "false"
            else:
                lines[name] = "true"
        return lines

    def parse_flags(self, flag_values: flags.FlagValues) -> flags.FlagValues:
        """Parses into `flag_values` (a caller's private FlagValues) the lines of flags.txt that set flags it
        defines; lines of other flags are left out. A value its flag refuses is a ConfigError."""
        arguments = []
        text = _read_text(self.flags_path) if os.path.isfile(self.flags_path) else ""
        for line in text.splitlines():
            line = line.strip()
            name = line[2:].partition("=")[0]
            if line.startswith("--") and (name in flag_values or (name.startswith("no") and name[2:] in flag_values)):
                arguments.append(line)
        try:
            flag_values([FLAGS_FILE, *arguments])
        except flags.Error as error:
            raise ConfigError(f"{self.flags_path}: {error}") from None
        return flag_values

    def settings(self) -> "RunSettings":
        """The run's settings, typed: the training settings (the task among them), the data settings, and
        the raw lines of everything else (the recipe's own flags)."""
        from legan_tf import hparams
        from legan_tf.data.flags import define_data_flags

        run_flags = flags.FlagValues()
        define_data_flags(run_flags)
        hparams.define_flags(TrainingSettings, "", __name__, run_flags)
        self.parse_flags(run_flags)
        return RunSettings(self, run_flags, self.flag_lines())

    @property
    def task(self) -> Optional[str]:
        """The run's recipe (--task), or None when flags.txt does not say."""
        return self.flag_lines().get("task")

    # -- labels.json -------------------------------------------------------------------------------

    @property
    def labels_path(self) -> str:
        return self.file(LABELS_FILE)

    def write_label_names(self, label_names: Mapping[str, Sequence[str]]) -> str:
        """Stores the training data's label names in the run, so its models export without the data."""
        return write_label_names(self.path, label_names)

    def label_names(self) -> Dict[str, Tuple[str, ...]]:
        """The run's label names: labels.json, or for a run without one, those of the data it trained on."""
        if os.path.isfile(self.labels_path):
            return read_label_names(self.labels_path, allow_empty=True)
        config = self.settings().data_config()
        try:
            from legan_tf.data import open_source

            if config is None:
                raise ConfigError(f"{self.flags_path} names no training data")
            return dict(open_source(config).label_names)
        except Exception as error:  # the data may be gone; say what is needed instead of a traceback
            raise ConfigError(f"{self.path} has no {LABELS_FILE} and its training data cannot be opened to read "
                              f"the label names ({error}). Write {self.labels_path} as "
                              '{"expression": [...], "lighting": [...]} in the training order.') from None

    # -- metrics -----------------------------------------------------------------------------------

    def append_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Adds one evaluation to metrics.jsonl and makes it metrics.json, the latest."""
        record = {"step": int(step), **{name: float(value) for name, value in metrics.items()}}
        with open(self.file(METRICS_LOG_FILE), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        with open(self.file(METRICS_FILE), "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)

    def latest_metrics(self) -> Dict[str, float]:
        """metrics.json: the latest held-out evaluation ({} before the first)."""
        path = self.file(METRICS_FILE)
        if not os.path.isfile(path):
            return {}
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"{path}: unreadable ({error}).") from None

    # -- the trained networks ----------------------------------------------------------------------

    def model_path(self, role: str) -> str:
        return self.file(model_file(role))

    def has_model(self, role: str) -> bool:
        return os.path.isfile(self.model_path(role))

    def save_model(self, role: str, network) -> str:
        """Writes a trained network as <role>.keras (a float32 copy when it trained in mixed precision)."""
        from legan_tf import precision

        path = self.model_path(role)
        precision.save(network, path)
        return path

    def load_model(self, role: str, flag: str = "--run_dir", expected: Optional[type] = None, hint: str = ""):
        """The run's <role>.keras; a missing file says that the run has not finished."""
        path = self.model_path(role)
        if not os.path.isfile(path):
            raise ConfigError(f"{flag}={self.path}: it has no {model_file(role)} (is the run finished?).")
        return load_model(path, role.replace("_", " "), flag, expected, hint)


class RunSettings:
    """A run's settings read from its flags.txt: typed values of the data flags and the training settings,
    and the raw text of every line (a recipe's flags among them)."""

    def __init__(self, run: RunDir, flag_values: flags.FlagValues, lines: Mapping[str, str]):
        self.run, self.flags, self.lines = run, flag_values, dict(lines)

    def __getitem__(self, name: str):
        """The typed value of a data or training flag (its default when flags.txt has no line for it)."""
        return self.flags[name].value

    @property
    def training(self) -> TrainingSettings:
        """The run's TrainingSettings (defaults where flags.txt has no line)."""
        from legan_tf import hparams

        try:
            return TrainingSettings(**hparams.read_flags(TrainingSettings, "", self.flags))
        except ConfigError as error:
            raise ConfigError(f"{self.run.flags_path}: {error}") from None

    def given(self) -> Dict[str, object]:
        """The typed flags that flags.txt sets."""
        return {name: self.flags[name].value for name in self.flags if self.flags[name].present}

    @property
    def task(self) -> Optional[str]:
        """The run's recipe, or None when flags.txt does not say."""
        return self.flags["task"].value if self.flags["task"].present else None

    def data_config(self):
        """The DataConfig the run trained on, or None when flags.txt names no data."""
        from legan_tf.data.flags import data_config_from_flags

        if self.flags["data_format"].value is None or self.flags["data_path"].value is None:
            return None
        return data_config_from_flags(self.flags)

    def recipe_value(self, field: str) -> str:
        """The raw value of the run's own recipe flag `--<task>_<field>` ("" when absent)."""
        if not self.task:
            return ""
        return self.lines.get(f"{self.task}_{field}", "")


# -- writing flags -----------------------------------------------------------------------------------

def project_flag_values(flag_values: flags.FlagValues) -> Dict[str, object]:
    """The values of the flags this project defines (not absl's or TensorFlow's own), minus NOT_REPRODUCED."""
    values = {}
    for module, module_flags in flag_values.flags_by_module_dict().items():
        # absl keys the main script's flags by its path (scripts/train.py) and library flags by module name.
        in_project = module.startswith("legan_tf") or module == "__main__" or (
            module.endswith(".py") and "site-packages" not in module
        )
        if in_project:
            values.update({flag.name: flag.value for flag in module_flags if flag.name not in NOT_REPRODUCED})
    return dict(sorted(values.items()))


def flagfile_text(values: Mapping[str, object]) -> str:
    """Flag values as flagfile lines (booleans as --name / --noname; None left out)."""
    lines = []
    for name, value in values.items():
        if isinstance(value, bool):
            lines.append(f"--{name}" if value else f"--no{name}")
        elif isinstance(value, (list, tuple)):
            lines.append(f"--{name}={','.join(str(item) for item in value)}")
        elif value is None:
            continue
        else:
            lines.append(f"--{name}={value}")
    return "\n".join(lines) + "\n"


# -- model files and label files anywhere -----------------------------------------------------------

def load_model(path: str, what: str, flag: str, expected: Optional[type] = None, hint: str = ""):
    """A saved .keras model of this project; a missing or unreadable file is a ConfigError naming `flag`
    (`legan_tf.models.weights.load_saved_model`)."""
    import legan_tf.models  # noqa: F401  (registers the networks, so load_model can rebuild them)
    from legan_tf.models.weights import load_saved_model

    return load_saved_model(path, what, f"{flag}={path}", expected, hint)


def write_label_names(folder: str, label_names: Mapping[str, Sequence[str]]) -> str:
    """Writes `<folder>/labels.json` (atomically: a reader sees the old file or the new one)."""
    path = os.path.join(folder, LABELS_FILE)
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({name: list(values) for name, values in label_names.items()}, indent=2) + "\n")
    os.replace(temporary, path)
    return path


def load_generator(path: str, flag: str = "--generator"):
    """A label-conditioned generator (the generator.keras of a StarGAN or LEGAN run); a ConfigError otherwise."""
    generator = load_model(path, "generator", flag)
    if not all(hasattr(generator, name) for name in ("image_size", "num_labels")):
        raise ConfigError(f"{path}: a {type(generator).__name__}, not a label-conditioned generator "
                          "(the generator.keras of a StarGAN or LEGAN run).")
    return generator


def load_label_generator(spec: str, flag: str):
    """(generator, its label names) of a label-conditioned generator named by `spec`: a shipped model
    (`pretrained:<name>`), a run directory, or a generator .keras file with its run's labels.json beside it.
    A ConfigError naming `flag` for anything else."""
    from legan_tf import pretrained

    if pretrained.is_pretrained(spec) or (spec and os.path.isdir(spec)):
        run = RunDir.open(spec, flag, allow_pretrained=True)
        generator = load_generator(run.model_path("generator"), flag)
        return generator, run.label_names()
    if not (spec and spec.endswith(".keras") and os.path.isfile(spec)):
        raise ConfigError(f"{flag}={spec}: no such model; give pretrained:<name>, a run directory or a generator "
                          ".keras file.")
    labels = labels_beside(spec)
    if labels is None:
        raise ConfigError(f"{flag}={spec}: no labels.json beside it (its run's, naming what its labels mean).")
    return load_generator(spec, flag), read_label_names(labels, flag)


def labels_beside(model_path: str) -> Optional[str]:
    """The labels.json in the folder of a model file (a run directory's), or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), LABELS_FILE)
    return path if os.path.isfile(path) else None


def load_attribute_classifier(path: str, flag: str, hint: str = ""):
    """An AttributeClassifier .keras of this project with the class names of its heads, read from the
    labels.json beside it (its run's): (model, {head: names}). A missing file, another kind of model, no
    labels.json, or a head whose class count is not the number of names given for it: a ConfigError naming
    `flag`. What the names must match (the data's, another classifier's) is the caller's check."""
    from legan_tf.models.classifier import AttributeClassifier

    model = load_model(path, "attribute classifier", flag, AttributeClassifier, hint)
    labels = labels_beside(path)
    if labels is None:
        raise ConfigError(f"{flag}={path}: no labels.json beside it (its run's, naming the classes of its heads).")
    names = read_label_names(labels, flag)
    heads = dict(model.head_classes)
    for head, classes in names.items():
        if head in heads and heads[head] != len(classes):
            raise ConfigError(f"{flag}={path}: its {head} head has {heads[head]} classes, its {labels} names "
                              f"{len(classes)}.")
    return model, names


def read_label_names(path: str, flag: Optional[str] = None, allow_empty: bool = False) -> Dict[str, Tuple[str, ...]]:
    """A labels.json: {"expression": [names...], "lighting": [names...]} (either or both), checked; with
    `allow_empty`, {} too (the run of a recipe whose data carry no labels, e.g. Q's ratings)."""
    where = f"{flag}={path}" if flag else path
    if not os.path.isfile(path):
        raise ConfigError(f"{where}: no such file.")
    try:
        names = json.loads(_read_text(path))
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{where}: unreadable label names ({error}).") from None
    if (not isinstance(names, dict) or not (names or allow_empty) or set(names) - set(LABEL_ATTRIBUTES)
            or not all(isinstance(v, list) and v for v in names.values())):
        raise ConfigError(f"{where}: expected {{\"expression\": [names...], \"lighting\": [names...]}} "
                          "(a run's labels.json).")
    return {name: tuple(str(v) for v in values) for name, values in names.items()}


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()
