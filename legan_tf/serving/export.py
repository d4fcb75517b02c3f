"""Trained models -> SavedModels in TF-Serving's layout, with named signatures and a model card.

    <serving_dir>/
        models.config               TF-Serving's model_config_list naming every model below
        batching.config             parameters for TF-Serving's --enable_batching
        <name>/<version>/           one SavedModel per export; versions are 1, 2, ... and never reused
            saved_model.pb, variables/
            assets/model_card.md    signatures, inputs, outputs, label names, the run, its metrics

The configs sit inside `serving_dir` so that one folder mounted at /models is all the real server
reads (`docker run ... -v $PWD/serving/models:/models tensorflow/serving
--model_config_file=/models/models.config`), and the in-process server of `legan_tf.serving` reads
the same folder.

Every model has a bytes signature, `serving_default` (encoded JPEG/PNG faces of any size in, as
`images_bytes`), and a float signature for batch use (faces in [-1, 1] at the model's size). Faces are
centre-cropped to a square and resized as the training data was (`legan_tf.data.preprocess`). Label
names are a lookup table inside the graph: an unknown name fails the request, it never falls back
to a default class. A multi-label group (CelebA's `attributes`) takes one string per image, the names of
the attributes it should have, comma-separated (empty for none); the classifier answers the names it
reads as present the same way, beside a sigmoid probability per attribute. TF-Serving's REST API base64-encodes string outputs only when their name ends in
`_bytes`, hence `images_bytes` for PNG output.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
from typing import Dict, List, Mapping, Optional, Sequence

import tensorflow as tf
from absl import logging as absl_logging

import legan_tf
from legan_tf.data.images import decode_rgb
from legan_tf.data.preprocess import center_crop_square, resize_rgb
from legan_tf.errors import ConfigError
from legan_tf.labels import is_multi_label
from legan_tf.runs import RunDir, model_file

MODEL_CARD = "model_card.md"
GREY_FACES_LINE = "grey faces"   # a model card's line for a generator that paints grey levels
MODELS_CONFIG = "models.config"
BATCHING_CONFIG = "batching.config"
# The networks of a run that are served, by their role in the run directory: the kind of serving module
# and the serving name it gets (None: the run's task name).
SERVED_ROLES = {"generator": ("generator", None), "quality_model": ("quality", "quality"),
                "attribute_classifier": ("classifier", "classifier"), "identity_model": ("identity", "identity")}
KINDS = tuple(kind for kind, _ in SERVED_ROLES.values())
# --enable_batching: up to 32 requests merged, waiting at most 5 ms for a batch to fill.
BATCHING_TEXT = """max_batch_size { value: 32 }
batch_timeout_micros { value: 5000 }
max_enqueued_batches { value: 100 }
num_batch_threads { value: 2 }
"""


# --- graph pieces shared by the signatures ------------------------------------------------------

def _decode_faces(images_bytes, size):
    """(B,) encoded images -> (B, size, size, 3) float32 in [-1, 1], and each crop's side (B,).

    The training pipeline's own decoding (grey repeated, alpha over black), centre crop and resize.
    """
    check = tf.debugging.assert_positive(tf.size(images_bytes), message="empty batch: send at least one image")
    with tf.control_dependencies([check]):
        images_bytes = tf.identity(images_bytes)

    def one(encoded):
        square = center_crop_square(decode_rgb(encoded))
        return resize_rgb(square, size), tf.shape(square)[0]

    return tf.map_fn(one, images_bytes, fn_output_signature=(tf.TensorSpec([size, size, 3], tf.float32),
                                                             tf.TensorSpec([], tf.int32)))


def _encode_png(images, sides):
    """(B, S, S, 3) in [-1, 1] -> (B,) PNG bytes, each resized back to its input crop's side."""
    def one(args):
        image, side = args
        image = tf.image.resize(image[None], tf.stack([side, side]), method="bilinear", antialias=True)[0]
        pixels = tf.cast(tf.round(tf.clip_by_value((image + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)
        return tf.io.encode_png(pixels)

    return tf.map_fn(one, (images, sides), fn_output_signature=tf.TensorSpec([], tf.string))


def _check_float_batch(images, labels=None):
    """The images (and labels), once the batch is known to be non-empty and of one size."""
    checks = [tf.debugging.assert_positive(tf.shape(images)[0], message="empty batch: send at least one image")]
    if labels is not None:
        checks.append(tf.debugging.assert_equal(tf.shape(labels)[0], tf.shape(images)[0],
                                                message="labels and images must have the same batch size"))
    with tf.control_dependencies(checks):
        return tf.identity(images)


class _LabelTable(tf.Module):
    """Names -> class ids of one attribute, inside the graph."""

    def __init__(self, attribute, names):
        super().__init__(name=f"{attribute}_labels")
        self.attribute, self.names = attribute, tuple(names)
        initializer = tf.lookup.KeyValueTensorInitializer(tf.constant(self.names), tf.range(len(self.names), dtype=tf.int64))
        self.table = tf.lookup.StaticHashTable(initializer, default_value=-1)
        self.name_tensor = tf.constant(self.names)

    def ids(self, names, batch):
        ids = self.table.lookup(names)
        # As control dependencies: the checks must fail before any op that would trip over the ids.
        checks = [tf.debugging.assert_equal(tf.size(names), batch, message=f"give one {self.attribute} name per image"),
                  tf.debugging.Assert(tf.reduce_all(ids >= 0),
                                      [f"unknown {self.attribute} name(s):", tf.boolean_mask(names, ids < 0),
                                       f"(known: {', '.join(self.names)})"], summarize=8)]
        with tf.control_dependencies(checks):
            return tf.identity(ids)

    def vectors(self, names, batch):
        """(B, K) 0/1 vectors of a multi-label group from one string per image: the names of the attributes the
        image should have, comma-separated ("" for none of them)."""
        tokens = tf.strings.strip(tf.strings.split(names, ","))
        tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)
        ids = tf.ragged.map_flat_values(self.table.lookup, tokens)
        flat = ids.flat_values
        checks = [tf.debugging.assert_equal(tf.size(names), batch, message=f"give one {self.attribute} list per "
                                            "image (comma-separated names, empty for none)"),
                  tf.debugging.Assert(tf.reduce_all(flat >= 0),
                                      [f"unknown {self.attribute} name(s):", tf.boolean_mask(tokens.flat_values,
                                                                                            flat < 0),
                                       f"(known: {', '.join(self.names)})"], summarize=8)]
        with tf.control_dependencies(checks):
            hot = tf.ragged.map_flat_values(lambda values: tf.one_hot(values, len(self.names)), ids)
            return tf.minimum(tf.reduce_sum(hot, axis=1), 1.0)

    def encode(self, names, batch):
        """The label-vector part of this group: one-hot ids, or a multi-label group's 0/1 vectors."""
        if is_multi_label(self.attribute):
            return self.vectors(names, batch)
        return tf.one_hot(self.ids(names, batch), len(self.names))


# --- one serving module per kind of model --------------------------------------------------------

class GeneratorModule(tf.Module):
    """A StarGAN or LEGAN generator: faces and target names in, edited faces out."""

    def __init__(self, generator, label_names: Mapping[str, Sequence[str]]):
        super().__init__(name="generator_serving")
        self.generator = generator
        self.size = int(generator.image_size)
        self.tables = [_LabelTable(attribute, names) for attribute, names in label_names.items()]
        self.num_labels = sum(len(table.names) for table in self.tables)
        expected = int(getattr(generator, "num_labels", self.num_labels))
        if expected != self.num_labels:
            raise ConfigError(f"the generator takes {expected} labels but the run's label names give "
                              f"{self.num_labels} ({', '.join(f'{t.attribute}: {len(t.names)}' for t in self.tables)}).")
        names = ["images_bytes"] + [table.attribute for table in self.tables]
        self.edit = tf.function(self._edit, input_signature=[tf.TensorSpec([None], tf.string, name=n) for n in names])
        self.translate = tf.function(self._translate, input_signature=[
            tf.TensorSpec([None, self.size, self.size, 3], tf.float32, name="images"),
            tf.TensorSpec([None, self.num_labels], tf.float32, name="labels")])

    def _edit(self, images_bytes, *targets):
        faces, sides = _decode_faces(images_bytes, self.size)
        batch = tf.size(images_bytes)
        labels = tf.concat([table.encode(names, batch) for table, names in zip(self.tables, targets)], axis=-1)
        return {"images_bytes": _encode_png(self.generator((faces, labels), training=False), sides)}

    def _translate(self, images, labels):
        images = _check_float_batch(images, labels)
        return {"images": self.generator((images, labels), training=False)}

    def signatures(self):
        return {"serving_default": self.edit.get_concrete_function(),
                "translate": self.translate.get_concrete_function()}


class _FacesModule(tf.Module):
    """A model that takes faces only: `serving_default` on encoded faces, `float_signature` on floats,
    both answering with `outputs(images)`."""

    float_signature = ""

    def __init__(self, model, size, float_size=None):
        super().__init__(name=f"{self.float_signature}_serving")
        self.model, self.size = model, int(size)
        self.from_bytes = tf.function(self._from_bytes, input_signature=[tf.TensorSpec([None], tf.string, name="images_bytes")])
        self.from_floats = tf.function(self._from_floats, input_signature=[
            tf.TensorSpec([None, float_size, float_size, 3], tf.float32, name="images")])

    def outputs(self, images):
        raise NotImplementedError

    def _from_floats(self, images):
        return self.outputs(_check_float_batch(images))

    def _from_bytes(self, images_bytes):
        return self.outputs(_decode_faces(images_bytes, self.size)[0])

    def signatures(self):
        return {"serving_default": self.from_bytes.get_concrete_function(),
                self.float_signature: self.from_floats.get_concrete_function()}


class QualityModule(_FacesModule):
    """Q: faces in, naturalness score (1-10 scale of the ratings) out."""

    float_signature = "score"

    def __init__(self, model):
        super().__init__(model, model.image_size, int(model.image_size))

    def outputs(self, images):
        return {"quality": tf.reshape(self.model(images, training=False), [-1])}


class ClassifierModule(_FacesModule):
    """The attribute classifier: per attribute, class probabilities and the most likely class's name."""

    float_signature = "classify"

    def __init__(self, model, label_names: Mapping[str, Sequence[str]]):
        missing = [name for name in model.head_classes if name not in label_names]
        if missing:
            raise ConfigError(f"the classifier has heads {', '.join(missing)} that the run's label names lack.")
        for name, count in model.head_classes.items():
            if len(label_names[name]) != count:
                raise ConfigError(f"the classifier's {name} head has {count} classes; the run names {len(label_names[name])}.")
        super().__init__(model, model.image_size, int(model.image_size))
        self.tables = {name: _LabelTable(name, label_names[name]) for name in model.head_classes}

    def outputs(self, images):
        outputs = {}
        for name, logits in self.model(images, training=False).items():
            if is_multi_label(name):  # a sigmoid per attribute; the names read as present, comma-separated
                present = logits > 0
                names = tf.tile(self.tables[name].name_tensor[None], [tf.shape(logits)[0], 1])
                outputs[f"{name}_probabilities"] = tf.sigmoid(logits)
                outputs[name] = tf.strings.reduce_join(tf.ragged.boolean_mask(names, present), axis=1, separator=",")
                continue
            outputs[f"{name}_probabilities"] = tf.nn.softmax(logits, axis=-1)
            outputs[name] = tf.gather(self.tables[name].name_tensor, tf.argmax(logits, axis=-1))
        return outputs


class IdentityModule(_FacesModule):
    """The identity network f: faces in (floats of any size), embeddings out (compare two by cosine)."""

    float_signature = "embed"

    def __init__(self, model):
        super().__init__(model, model.input_size)

    def outputs(self, images):
        return {"embedding": self.model(images, training=False)}


def serving_module(kind: str, model, label_names: Mapping[str, Sequence[str]]) -> tf.Module:
    if kind == "generator":
        return GeneratorModule(model, label_names)
    if kind == "quality":
        return QualityModule(model)
    if kind == "classifier":
        return ClassifierModule(model, label_names)
    if kind == "identity":
        return IdentityModule(model)
    raise ValueError(f"unknown kind of model {kind!r}; one of {', '.join(KINDS)}")


# --- the serving directory ------------------------------------------------------------------------

def versions(model_dir: str) -> List[int]:
    """The integer versions already exported under `<serving_dir>/<name>`, ascending."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(entry) for entry in os.listdir(model_dir)
                  if entry.isdigit() and os.path.isdir(os.path.join(model_dir, entry)))


def write_configs(serving_dir: str, base_path: str = "/models") -> None:
    """models.config (every model with a version under serving_dir, at base_path/<name>) and batching.config."""
    names = sorted(entry for entry in os.listdir(serving_dir) if versions(os.path.join(serving_dir, entry)))
    entries = "".join(f'  config {{\n    name: "{name}"\n    base_path: "{base_path}/{name}"\n'
                      f'    model_platform: "tensorflow"\n  }}\n' for name in names)
    _write_atomically(os.path.join(serving_dir, MODELS_CONFIG), f"model_config_list {{\n{entries}}}\n")
    _write_atomically(os.path.join(serving_dir, BATCHING_CONFIG), BATCHING_TEXT)


def _write_atomically(path: str, text: str) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def signature_inputs(function) -> Dict[str, tf.TensorSpec]:
    """A signature's inputs by name: a traced function names its positional specs, a loaded one its keywords."""
    positional, named = function.structured_input_signature
    return {**{spec.name: spec for spec in positional}, **named}


def describe_signatures(module: tf.Module) -> Dict[str, dict]:
    """{signature: {"inputs": {name: (dtype, shape)}, "outputs": {...}}} from the concrete functions."""
    described = {}
    for key, function in module.signatures().items():
        inputs = signature_inputs(function)
        outputs = function.structured_outputs
        spec = lambda s: (s.dtype.name, [d if d is not None else -1 for d in s.shape.as_list()])  # noqa: E731
        described[key] = {"inputs": {name: spec(s) for name, s in sorted(inputs.items())},
                          "outputs": {name: spec(s) for name, s in sorted(outputs.items())}}
    return described


def model_card(name: str, version: int, kind: str, module: tf.Module, label_names: Mapping[str, Sequence[str]],
               source: Mapping[str, object]) -> str:
    lines = [f"# {name}, version {version}", "",
             f"A {kind} exported by legan-tf {legan_tf.__version__} on {source.get('exported', '')}.", ""]
    lines += ["## Where it came from", ""]
    lines += [f"- {key}: `{value}`" for key, value in source.items() if key not in ("metrics", "exported")]
    metrics = source.get("metrics") or {}
    if metrics:
        lines += ["", "Held-out metrics of the run's last evaluation:", "", "| metric | value |", "|---|---:|"]
        lines += [f"| {metric} | {value:.4g} |" if isinstance(value, float) else f"| {metric} | {value} |"
                  for metric, value in metrics.items()]
    lines += ["", "## Signatures", "",
              "Shapes: -1 is any size. Faces in bytes signatures: JPEG or PNG of any size, centre-cropped to a "
              "square and resized to the model's size as in training; faces in float signatures: RGB in [-1, 1]."]
    for key, spec in describe_signatures(module).items():
        lines += ["", f"### `{key}`", "", "| | name | dtype | shape |", "|---|---|---|---|"]
        for side in ("inputs", "outputs"):
            lines += [f"| {side[:-1]} | `{n}` | {d} | {s} |" for n, (d, s) in spec[side].items()]
    if kind == "generator":
        lines += ["", "`images_bytes` out: PNG, each at its input crop's side. `labels` of `translate`: one-hot groups "
                  "concatenated in this order: " + ", ".join(f"{a} ({len(n)})" for a, n in label_names.items()) + "."]
    if kind == "generator" and getattr(getattr(module, "generator", None), "grey_colour", False):
        lines += ["", "## Faces", "", f"- {GREY_FACES_LINE}: its colour map is one channel, trained on grey faces. "
                  "Feed it grey faces and keep only its change of brightness (`edit_photo.py` does so for this "
                  "export; pass `--grey_model` when editing through a server address)."]
    if label_names and kind in ("generator", "classifier"):
        lines += ["", "## Label names", "", "An unknown name fails the request (INVALID_ARGUMENT); there is no default.", ""]
        lines += [f"- {attribute}: " + ", ".join(f"`{n}`" for n in names) for attribute, names in label_names.items()]
    lines += ["", "## Use", "", "```bash",
              "python serving/server.py --model_dir=<serving dir>          # or tensorflow/serving, see docs/serving.md"]
    if kind == "generator":
        flags_text = " ".join(f"--{a}={v}" for a, v in example_label_values(label_names).items())
        lines.append(f"python serving/client.py --server=localhost:8500 --model={name} --image=face.jpg {flags_text} "
                     f"--output=edited.png")
    else:
        lines.append(f"python serving/client.py --server=localhost:8500 --model={name} --image=face.jpg")
    lines += ["```", ""]
    return "\n".join(lines)


def export_model(model, kind: str, serving_dir: str, name: str, label_names: Optional[Mapping[str, Sequence[str]]] = None,
                 source: Optional[Mapping[str, object]] = None) -> str:
    """Exports one Keras model as the next version of `<serving_dir>/<name>`; returns the version's path.

    The SavedModel is written beside the versions and renamed into place when complete: a server
    polling the folder never sees half a version, and no existing version is overwritten.
    """
    label_names = {attribute: tuple(names) for attribute, names in (label_names or {}).items()}
    module = serving_module(kind, model, label_names)
    model_dir = os.path.join(serving_dir, name)
    os.makedirs(model_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=model_dir)
    verbosity = absl_logging.get_verbosity()
    try:
        # TF's SavedModel writer logs renamed handles and shard timings at INFO: noise to a user.
        absl_logging.set_verbosity(absl_logging.WARNING)
        tf.saved_model.save(module, staging, signatures=module.signatures())
        # mkdtemp made the folder private (0700); a version must be readable by a server running as another user.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)
        source = {"exported": datetime.datetime.now().isoformat(timespec="seconds"), **(source or {})}
        os.makedirs(os.path.join(staging, "assets"), exist_ok=True)
        while True:
            version = (versions(model_dir) or [0])[-1] + 1
            with open(os.path.join(staging, "assets", MODEL_CARD), "w", encoding="utf-8") as handle:
                handle.write(model_card(name, version, kind, module, label_names, source))
            target = os.path.join(model_dir, str(version))
            try:
                os.rename(staging, target)  # fails if another export took this version meanwhile
                break
            except OSError:
                if not os.path.exists(target):
                    raise
    finally:
        absl_logging.set_verbosity(verbosity)
        if os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)
    write_configs(serving_dir)
    return target


# --- a run directory -------------------------------------------------------------------------------

def run_label_names(run_dir: str) -> Dict[str, tuple]:
    """The run's label names (its labels.json, or for a run without one, its training data's)."""
    return RunDir.open(run_dir, allow_pretrained=True).label_names()


def export_run(run_dir: str, serving_dir: str, kinds: Sequence[str] = KINDS, generator_name: str = "") -> List[tuple]:
    """Exports every model the run wrote (generator.keras, quality_model.keras, ...) of the given kinds;
    returns (kind, version path) pairs."""
    import keras

    from legan_tf import pretrained

    run = RunDir.open(run_dir, allow_pretrained=True)
    task = run.task or "classifier"
    if pretrained.is_pretrained(run_dir) and not generator_name:  # served under its own name
        generator_name = os.path.basename(run.path)
    found = [(role, kind, name or generator_name or task) for role, (kind, name) in SERVED_ROLES.items()
             if kind in kinds and run.has_model(role)]
    if not found:
        raise ConfigError(f"{run_dir} holds none of {', '.join(map(model_file, SERVED_ROLES))} for "
                          f"--models={','.join(kinds)}: the run has not finished (models are written at its end).")
    label_names = run.label_names() if any(kind in ("generator", "classifier") for _, kind, _ in found) else {}
    metrics = run.latest_metrics()
    exported = []
    for role, kind, name in found:
        path = run.model_path(role)
        try:
            model = keras.models.load_model(path)
        except (OSError, ValueError, TypeError) as error:
            raise ConfigError(f"{path}: cannot load it ({error}).") from None
        source = {"run": os.path.abspath(run_dir), "file": model_file(role), "task": task, "metrics": metrics}
        exported.append((kind, export_model(model, kind, serving_dir, name, label_names, source)))
    return exported


def export_pretrained(model: str, serving_dir: str) -> str:
    """A shipped model (`pretrained:<name>`) exported as the generator `<name>` into `serving_dir` (for
    serving it without a run or an export of one's own); returns the version folder."""
    from legan_tf import pretrained

    pretrained.folder(model, "--model_dir")  # an unknown name lists the known ones, naming this flag
    [(_, path)] = export_run(model, serving_dir, ["generator"])
    return path


def example_label_values(label_names: Mapping[str, Sequence[str]]) -> Dict[str, str]:
    """A target per attribute for printed example commands: the middle light (the lights run from one
    side to the other, so the middle one is near frontal, where a young model already does well) and
    the second class of any other attribute (the first is often neutral)."""
    return {attribute: names[len(names) // 2] if attribute == "lighting" else
            ",".join(names[1:3]) if is_multi_label(attribute) else names[min(1, len(names) - 1)]
            for attribute, names in label_names.items()}


def example_image(run_dir: str) -> str:
    """A face from the run's data folder, so a printed command works as it stands ("face.jpg" if none)."""
    folder = os.path.dirname(RunDir.open(run_dir, allow_pretrained=True).settings()["data_path"] or "")
    for root, folders, files in (os.walk(folder) if folder else ()):
        folders.sort()  # walked in name order, stopping at the first image: a large dataset is not listed whole
        for name in sorted(files):
            if name.lower().endswith((".png", ".jpg", ".jpeg")):
                return os.path.join(root, name)
    return "face.jpg"


def serving_commands(exported: Sequence[tuple], serving_dir: str, run_dir: str, image: str = "") -> str:
    """What to type next: the exported versions, the commands that serve them and one that edits a face."""
    lines = [f"Exported {path}  (model card: {os.path.join(path, 'assets', MODEL_CARD)})" for _, path in exported]
    lines += ["", "Serve them (the project's in-process server: gRPC on :8500, REST on :8501):",
              f"  .venv/bin/python serving/server.py --model_dir={serving_dir}",
              "or with TensorFlow Serving itself (docs/serving.md):",
              f'  docker run --rm -p 8500:8500 -p 8501:8501 -v "{os.path.abspath(serving_dir)}:/models" tensorflow/serving '
              "--model_config_file=/models/models.config --enable_batching --batching_parameters_file=/models/batching.config"]
    generators = [path for kind, path in exported if kind == "generator"]
    if generators:
        name = os.path.basename(os.path.dirname(generators[0]))
        options = " ".join(f"--{a}={v}" for a, v in example_label_values(run_label_names(run_dir)).items())
        lines += ["Then edit a face through it (in another shell):",
                  f"  .venv/bin/python serving/client.py --server=localhost:8500 --model={name} "
                  f"--image={image or example_image(run_dir)} {options} --output=edited.png"]
    return "\n".join(lines)

