"""Edit the expression (and lighting) of every face in a photo with a trained generator: what
`scripts/edit_photo.py` does (docs/edit_photo.md).

Per photo: read it upright (EXIF), find every face (legan_tf.photos.faces), align each to the
canonical crop at the generator's size, edit the crops in one batch, and paste each edit back into the
full-resolution photo through the inverse alignment under a feathered mask. Pixels outside the masks
are the input's, byte for byte (a lossy output format re-encodes them, of course).

What is pasted (`paste="auto"`, the default) depends on the generator:

- one with an attention output (`StarGANGenerator(output_mode="attention")`: a colour map C and a
  mask A, the edit being A * C + (1 - A) * crop) is composited at the photo's own resolution: C and
  A are scaled up, and each photo pixel becomes photo + A * (C - photo). Where A is 0 the photo's
  own pixels stay, with their full sharpness; only what the expression needs is painted in.
- any other generator (`paste="change"`): the edit's change, photo + upsampled (edited crop - crop).
  The photo keeps its grain and colour where the generator changed nothing, but the generator's
  own loss of detail over the whole face is pasted too, so a large face turns somewhat soft.

`paste="replace"` pastes the upsampled generated face itself.

A model is a training run directory (generator.keras and labels.json), a model that ships with the
package (`pretrained:<name>`, legan_tf.pretrained) or a TF-Serving export written by scripts/export.py
(a version folder, the model's folder of versions, or the serving root holding a single generator);
`load_editor` opens any of them. A generator trained on grey faces (a one-channel colour map, or a
shipped model whose card says so) is edited as --grey_model asks, unless the paste is "replace".
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import os
import re
import time
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
from PIL import Image

from legan_tf.errors import ConfigError
from legan_tf.labels import is_multi_label
from legan_tf.photos import faces as face_tools

# A photo with no face that can be edited: the scripts exit with this status, apart from bad input (1).
NO_FACE_EXIT = 3
PASTE_MODES = ("auto", "change", "replace")
STRIP_CELL = 192
STRIP_CONTEXT = 1.6


class NoFaceError(Exception):
    """The photo holds no face that can be edited; the message says what was found instead."""


# --- models ----------------------------------------------------------------------------------------

class Editor:
    """A generator with its label names: aligned crops and target names in, edited crops out."""

    label_names: Dict[str, tuple]
    image_size: int
    source: str
    # Trained on grey faces (FER2013, CK+48): fed the grey crop, and only its change of brightness is
    # pasted, so the photo keeps its colours (what --grey_model asks for any model).
    grey_faces: bool = False

    @property
    def framing(self) -> str:
        """The crop the model was trained on (faces.FRAMINGS): CelebA's for a CelebA model, else FER2013's."""
        return face_tools.framing_for(self.label_names)

    def edit(self, crops: np.ndarray, targets: Sequence[Mapping[str, str]]) -> np.ndarray:
        """(B, S, S, 3) uint8 crops and one {attribute: name} per crop -> (B, S, S, 3) float32 in [0, 255]."""
        raise NotImplementedError

    @property
    def has_parts(self) -> bool:
        """Whether `edit_parts` gives the edit as a colour map and a mask (an attention generator)."""
        return False

    # Whether that colour map is the crop plus a change (colour_map="residual"), pasted as the change.
    residual_colour: bool = False

    def edit_parts(self, crops: np.ndarray, targets: Sequence[Mapping[str, str]]):
        """(colour (B, S, S, 3) float32 in [0, 255], mask (B, S, S) float32 in [0, 1]) for an attention generator."""
        raise ConfigError(f"{self.source}: the generator has no attention output (a colour map and a mask)")

    def edit_parts_and_shading(self, crops: np.ndarray, targets: Sequence[Mapping[str, str]]):
        """`edit_parts` and the (B, S, S) float32 shading ratio that the crop is multiplied by before the attention
        composite (a LEGAN built with lighting_output="ratio"), or None when the generator has none."""
        return (*self.edit_parts(crops, targets), None)


class KerasEditor(Editor):
    def __init__(self, run_dir: str, model_file: Optional[str] = None):
        """The generator.keras of a run directory, or `model_file`: any generator .keras with a labels.json
        beside it."""
        from legan_tf.runs import RunDir, labels_beside, load_model, read_label_names

        run = RunDir(run_dir)
        path = model_file or run.model_path("generator")
        self.generator = load_model(path, "generator", "--model")
        if model_file:
            labels = labels_beside(model_file)
            if labels is None:
                raise ConfigError(f"--model={model_file}: no labels.json beside it (the run directory's names its "
                                  "labels); copy the run's labels.json next to the file")
            self.label_names = read_label_names(labels)
        else:
            self.label_names = run.label_names()
        self.image_size = int(self.generator.image_size)
        self.source = path
        expected = int(getattr(self.generator, "num_labels", 0))
        given = sum(len(names) for names in self.label_names.values())
        if expected != given:
            raise ConfigError(f"{path} takes {expected} labels but the run's label names give {given}")
        if int(getattr(self.generator, "input_channels", 3)) != 3:
            raise ConfigError(f"{path} takes {self.generator.input_channels} input channels; photos give RGB only")
        # A one-channel colour map paints grey levels whatever the data; a shipped model's card says so too.
        self.grey_faces = bool(getattr(self.generator, "grey_colour", False)) or _card_says_grey(run_dir)
        self._functions: Dict[str, object] = {}

    # The generator runs through a function compiled once per loaded model and method (`compiled_method`):
    # called eagerly, Keras dispatches each of its layers' operations one at a time from Python, which
    # costs a 64 px generator several times its arithmetic. False calls it eagerly (the same outputs to
    # float rounding: tests/photos/test_app.py).
    compiled = True

    def _inputs(self, crops, targets):
        labels = np.concatenate([_one_hot(self.label_names, target)[None] for target in targets], axis=0)
        return crops.astype(np.float32) / 127.5 - 1.0, labels

    def _run(self, method: str, crops, targets):
        """`generator.<method>((images, labels), training=False)` on the crops ("call": the generator itself)."""
        images, labels = self._inputs(crops, targets)
        if not self.compiled:
            return _method(self.generator, method)((images, labels), training=False)
        if method not in self._functions:
            self._functions[method] = compiled_method(self.generator, method, labels.shape[-1])
        return self._functions[method](images, labels)

    def edit(self, crops, targets):
        edited = np.asarray(self._run("call", crops, targets))
        return (np.clip(edited, -1.0, 1.0) + 1.0) * 127.5

    @property
    def has_parts(self):
        # A LEGAN whose expression is a warp (expression_output="warp") composites over the crop moved along its
        # displacement, which a colour map and a mask pasted at the photo's resolution do not carry: its whole
        # edited crop is pasted instead.
        return (getattr(self.generator, "output_mode", "image") == "attention"
                and getattr(self.generator, "expression_output", "mask") != "warp")

    @property
    def residual_colour(self):
        """Whether the colour map is the input plus a change (a generator built with colour_map="residual")."""
        return self.has_parts and getattr(self.generator, "colour_map", "absolute") == "residual"

    def edit_parts(self, crops, targets):
        if not self.has_parts:
            return super().edit_parts(crops, targets)
        return _scaled_parts(*self._run("edit_parts", crops, targets))

    def edit_parts_and_shading(self, crops, targets):
        if not self.has_parts or getattr(self.generator, "lighting_output", "mask") != "ratio":
            return super().edit_parts_and_shading(crops, targets)
        color, mask, ratio = self._run("edit_parts_and_ratio", crops, targets)
        return (*_scaled_parts(color, mask), np.asarray(ratio, np.float32)[..., 0])


def _method(generator, method: str):
    return generator if method == "call" else getattr(generator, method)


def compiled_method(generator, method: str, num_labels: int):
    """`generator.<method>((images, labels), training=False)` ("call": the generator itself) of a built
    generator (a loaded one is) compiled once:
    a tf.function with a fixed signature (any batch of float32 (B, S, S, C) faces and (B, num_labels)
    labels: traced on the first call, never again), or under JAX a jax.jit over the generator's weights
    as they are now (compiled once per batch size). Returns `function(images, labels)`."""
    from legan_tf import backend

    size, channels = int(generator.image_size), int(getattr(generator, "input_channels", 3))

    def plain(images, labels):
        return _method(generator, method)((images, labels), training=False)

    if backend.name() == "jax":
        import jax
        import keras

        variables = list(generator.variables)
        values = [variable.value for variable in variables]

        def stateless(weights, images, labels):
            with keras.StatelessScope(state_mapping=list(zip(variables, weights))):
                return plain(images, labels)

        jitted = jax.jit(stateless)
        return lambda images, labels: jitted(values, images, labels)
    import tensorflow as tf

    return tf.function(plain, input_signature=[tf.TensorSpec([None, size, size, channels], tf.float32),
                                               tf.TensorSpec([None, num_labels], tf.float32)])


def _scaled_parts(color, mask):
    """A generator's colour map in [-1, 1] and mask (B, S, S, 1) as (colour in [0, 255], mask (B, S, S) in [0, 1])."""
    color = (np.clip(np.asarray(color, np.float32), -1.0, 1.0) + 1.0) * 127.5
    return color, np.clip(np.asarray(mask, np.float32)[..., 0], 0.0, 1.0)


def _one_hot(label_names: Mapping[str, Sequence[str]], target: Mapping[str, str]) -> np.ndarray:
    """The label vector of one target: a one-hot group per attribute; a multi-label group's 0/1 vector from its
    comma-separated names (`resolve_targets` has checked them)."""
    groups = []
    for attribute, names in label_names.items():
        group = np.zeros(len(names), np.float32)
        chosen = [name for name in target[attribute].split(",") if name] if is_multi_label(attribute) \
            else [target[attribute]]
        group[[list(names).index(name) for name in chosen]] = 1.0
        groups.append(group)
    return np.concatenate(groups)


MODEL_CARD = os.path.join("assets", "model_card.md")
# A generator served by TF-Serving (or serving/server.py): host:port/model over gRPC.
REMOTE = re.compile(r"(?:grpc://)?(?P<server>[A-Za-z0-9.\-]+:\d{1,5})/(?P<model>[A-Za-z0-9_.\-]+)")
REMOTE_SIZE = 128  # faces are sent at this size; the served model scales them to its own and back


class RemoteEditor(Editor):
    """A generator on a TF-Serving server (`host:port/model`), called over gRPC through its
    `serving_default` signature. Its label names are read from the server: an export refuses an unknown
    name with a message that lists the known ones (legan_tf/serving/export.py), which both TF-Serving
    and the project's server pass on."""

    def __init__(self, address: str):
        from legan_tf.serving.client import GrpcClient, ServingError

        match = REMOTE.fullmatch(address)
        self.client, self.model = GrpcClient(match["server"], timeout=60.0), match["model"]
        self.source, self.image_size = address, REMOTE_SIZE
        try:
            inputs = self.client.signatures(self.model)["serving_default"]["inputs"]
        except ServingError as error:
            raise ConfigError(f"--model={address}: {error}") from None
        except KeyError:
            raise ConfigError(f"--model={address}: the served model has no serving_default signature") from None
        attributes = [name for name in inputs if name != "images_bytes"]
        if "images_bytes" not in inputs or not attributes:
            raise ConfigError(f"--model={address}: not a generator export (its serving_default takes "
                              f"{', '.join(inputs)})")
        [face] = _pngs(np.zeros((1, 8, 8, 3), np.uint8))
        names: Dict[str, tuple] = {}
        for _ in attributes:  # each request names the attribute it stops at; the next one gives it a known name
            probe = {attribute: [names[attribute][0] if attribute in names else "?"] for attribute in attributes}
            try:
                self.client.predict(self.model, {"images_bytes": [face], **probe})
            except ServingError as error:
                known = re.search(r"unknown (\w+) name\(s\):.*\(known: ([^)]*)\)", error.message, re.S)
                if known and known[1] in attributes and known[1] not in names:
                    names[known[1]] = tuple(name.strip() for name in known[2].split(","))
                    continue
            break
        missing = [attribute for attribute in attributes if attribute not in names]
        if missing:
            raise ConfigError(f"--model={address}: cannot read the {', '.join(missing)} names from the server (a "
                              "generator exported by scripts/export.py lists them when refusing an unknown one)")
        self.label_names = {attribute: names[attribute] for attribute in attributes}

    def edit(self, crops, targets):
        from legan_tf.serving.client import ServingError, edit_faces

        names = {attribute: [target[attribute] for target in targets] for attribute in self.label_names}
        try:
            replies = edit_faces(self.client, self.model, _pngs(crops), **names)
        except ServingError as error:
            raise ConfigError(f"{self.source}: {error}") from None
        return _decoded(replies)


class ServingEditor(Editor):
    """A generator exported by scripts/export.py, called through its `serving_default` signature
    (PNG faces and target names in, PNG faces out), as TF-Serving would call it."""

    def __init__(self, version_dir: str):
        import tensorflow as tf

        card = _read_card(version_dir)
        self.label_names, self.grey_faces = card["label_names"], card["grey_faces"]
        try:
            loaded = tf.saved_model.load(version_dir)
        except (OSError, ValueError) as error:
            raise ConfigError(f"--model={version_dir}: cannot load the SavedModel ({error})") from None
        signatures = loaded.signatures
        if "serving_default" not in signatures or "translate" not in signatures:
            raise ConfigError(f"--model={version_dir}: not a generator export (no serving_default and translate "
                              "signatures); export one with scripts/export.py")
        self._loaded = loaded   # the signatures need their object alive
        self._function = signatures["serving_default"]
        self.image_size = int(signatures["translate"].structured_input_signature[1]["images"].shape[1])
        self.source = version_dir

    def edit(self, crops, targets):
        import tensorflow as tf

        inputs = {"images_bytes": tf.constant(_pngs(crops))}
        for attribute in self.label_names:
            inputs[attribute] = tf.constant([target[attribute] for target in targets])
        return _decoded(self._function(**inputs)["images_bytes"].numpy())


def _pngs(crops: np.ndarray) -> List[bytes]:
    """(B, S, S, 3) uint8 crops -> PNG files, as a generator's serving signature takes them."""
    encoded = []
    for crop in crops:
        buffer = io.BytesIO()
        Image.fromarray(crop).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    return encoded


def _decoded(pngs) -> np.ndarray:
    """The signature's PNG answers -> (B, S, S, 3) float32 in [0, 255]."""
    return np.stack([np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float32) for png in pngs])


def _read_card(version_dir: str) -> Dict[str, object]:
    """What edit_photo needs from an export's model card: its label names in label-vector order ("## Label
    names") and whether its generator paints grey levels (the card's grey-faces line)."""
    from legan_tf.serving.export import GREY_FACES_LINE

    path = os.path.join(version_dir, MODEL_CARD)
    if not os.path.isfile(path):
        raise ConfigError(f"--model={version_dir}: no {MODEL_CARD}; export the generator with scripts/export.py")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if "## Label names" not in text:
        raise ConfigError(f"{path}: lists no label names; is this a generator export?")
    names = {}
    for line in text.split("## Label names", 1)[1].splitlines():
        match = re.match(r"- (\w+): (.*)$", line.strip())
        if match:
            names[match.group(1)] = tuple(re.findall(r"`([^`]*)`", match.group(2)))
    if not names:
        raise ConfigError(f"{path}: lists no label names; is this a generator export?")
    grey = any(line.startswith(f"- {GREY_FACES_LINE}:") for line in text.splitlines())
    return {"label_names": names, "grey_faces": grey}


def _versions(folder: str) -> List[str]:
    return sorted((entry for entry in os.listdir(folder)
                   if entry.isdigit() and os.path.isfile(os.path.join(folder, entry, "saved_model.pb"))), key=int)


def _card_says_grey(folder: str) -> bool:
    """Whether a shipped model's pretrained.json says it was trained on grey faces."""
    from legan_tf import pretrained

    path = os.path.join(folder, pretrained.INFO_FILE)
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as handle:
        return bool(json.load(handle).get("grey_faces", False))


def load_editor(model: str) -> Editor:
    """A run directory, a shipped model (`pretrained:<name>`) or a serving export (version, model folder,
    or a serving root with one generator)."""
    from legan_tf import pretrained
    from legan_tf.runs import RunDir, model_file

    if pretrained.is_pretrained(model):
        folder = pretrained.folder(model)
        pretrained.verify(model)
        editor = KerasEditor(folder)
        editor.source = model   # the name says which file: the package's own copy
        return editor
    if model and model.endswith(".keras") and os.path.isfile(model):
        return KerasEditor(os.path.dirname(os.path.abspath(model)), model)
    if model and REMOTE.fullmatch(model):
        return RemoteEditor(model)
    if not model or not os.path.isdir(model):
        raise ConfigError(f"--model={model}: no such folder or file (give pretrained:<name>, a training run "
                          "directory, a generator .keras file, a serving export or a TF-Serving address host:port/<model>)")
    if RunDir(model).has_model("generator"):
        return KerasEditor(model)
    if os.path.isfile(os.path.join(model, "saved_model.pb")):
        return ServingEditor(model)
    versions = _versions(model)
    if versions:
        return ServingEditor(os.path.join(model, versions[-1]))
    generators = []
    for name in sorted(os.listdir(model)):
        folder = os.path.join(model, name)
        found = _versions(folder) if os.path.isdir(folder) else []
        card = os.path.join(folder, found[-1], MODEL_CARD) if found else ""
        if card and os.path.isfile(card):
            with open(card, encoding="utf-8") as handle:
                text = handle.read()
            if "A generator exported" in text and "## Label names" in text:
                generators.append(folder)
    if len(generators) == 1:
        return ServingEditor(os.path.join(generators[0], _versions(generators[0])[-1]))
    if generators:
        raise ConfigError(f"--model={model} holds several generators ({', '.join(map(os.path.basename, generators))}); "
                          f"name one, e.g. --model={generators[0]}")
    raise ConfigError(f"--model={model}: neither a training run directory (no {model_file('generator')}) nor a "
                      "serving export of a generator (no saved_model.pb, no numbered versions)")


def resolve_targets(label_names: Mapping[str, Sequence[str]], expression: Optional[str], lighting: Optional[str],
                    all_expressions: bool = False, all_lightings: bool = False,
                    attributes: Optional[str] = None) -> List[Dict[str, str]]:
    """The target of every edit: {attribute: name} for each attribute of the model; ConfigError naming the
    known names for an unknown or missing one. With all_expressions, one target per expression; with
    all_lightings, one per lighting; with both, every lighting x expression, lighting by lighting.
    `attributes`: for a multi-label model (CelebA's), the names the faces should have, comma-separated (""
    for none); the target holds them in the model's order."""
    given = {"expression": expression, "lighting": lighting, "attributes": attributes}
    every = {"expression": all_expressions, "lighting": all_lightings, "attributes": False}
    if attributes is not None and "attributes" in label_names:
        wanted = [name.strip() for name in attributes.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in label_names["attributes"]]
        if unknown:
            raise ConfigError(f"--attributes={attributes}: unknown {', '.join(unknown)}; the model knows "
                              f"{', '.join(label_names['attributes'])}")
        given["attributes"] = ",".join(name for name in label_names["attributes"] if name in wanted)
    for attribute, value in given.items():
        if value is None or is_multi_label(attribute) and attribute in label_names:
            continue
        if attribute not in label_names:
            raise ConfigError(f"--{attribute}={value}: the model does not edit {attribute} (it takes "
                              f"{', '.join(label_names)})")
        if value not in label_names[attribute]:
            raise ConfigError(f"--{attribute}={value}: unknown {attribute}; the model knows "
                              f"{', '.join(label_names[attribute])}")
    for attribute in (name for name, wanted in every.items() if wanted):
        if attribute not in label_names:
            raise ConfigError(f"--all_{attribute}s: the model does not edit the {attribute}")
        if given[attribute] is not None:
            raise ConfigError(f"--all_{attribute}s edits to every {attribute}; leave out --{attribute}")
    unknown = [attribute for attribute in label_names if attribute not in given]
    if unknown:
        raise ConfigError(f"the model edits {', '.join(unknown)} too, which this tool has no flag for")
    # No classifier tells a photo's own class, so every attribute the model has must be chosen; a
    # silent default would change the face in a way nobody asked for.
    for attribute, names in label_names.items():
        if given[attribute] is None and not every[attribute]:
            hint = f" ({names[len(names) // 2]}, the middle one, is the face lab's near-frontal light)" \
                if attribute == "lighting" else ""
            raise ConfigError(f"the model edits {attribute} as well: pass --{attribute}=<name>, one of "
                              f"{', '.join(names)}{hint}" if not is_multi_label(attribute) else
                              f"the model edits binary attributes: pass --attributes=<the names the faces should "
                              f"have, comma-separated; empty for none>, of {', '.join(names)}")
    order = [attribute for attribute in ("lighting", "expression", "attributes") if attribute in label_names]
    choices = [label_names[attribute] if every[attribute] else [given[attribute]] for attribute in order]
    return [dict(zip(order, names)) for names in itertools.product(*choices)]


# --- the photo -------------------------------------------------------------------------------------

@dataclasses.dataclass
class Edited:
    photo: face_tools.Photo
    faces: List[face_tools.Face]
    alignments: List[face_tools.Alignment]
    results: List[np.ndarray]        # one edited photo (H, W, 3) uint8 per target
    skipped: List[str]
    paste: str = "change"            # how the edits were pasted: attention, change or replace
    masks: Optional[np.ndarray] = None   # with attention: (targets * faces, S, S) the generator's masks


def _grey(crops: np.ndarray) -> np.ndarray:
    luma = crops.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(np.clip(np.round(luma), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def edit_faces(editor: Editor, photo: face_tools.Photo, finder: face_tools.FaceFinder,
               targets: Sequence[Mapping[str, str]], paste: str = "auto", grey_model: bool = False,
               name: str = "the photo", timings: Optional[Dict[str, float]] = None,
               framing: str = "auto") -> Edited:
    """Every face of the photo edited to each target; NoFaceError when no face can be edited. A `timings`
    dict receives the seconds of each stage: detect (faces and meshes), align, edit, paste. `framing`: the
    crop the faces are aligned to (faces.FRAMINGS), "auto" the model's own (`Editor.framing`)."""
    clock = _Clock(timings)
    if paste not in PASTE_MODES:
        raise ConfigError(f"--paste must be one of {', '.join(PASTE_MODES)}, got {paste!r}")
    grey_model = grey_model or (editor.grey_faces and paste != "replace")
    if grey_model and paste == "replace":
        raise ConfigError("--grey_model pastes the change of brightness only; it cannot be used with --paste=replace")
    attention = paste == "auto" and editor.has_parts
    paste = "change" if paste == "auto" else paste
    found, skipped = finder(photo.rgb)
    clock("detect")
    if not found:
        height, width = photo.rgb.shape[:2]
        why = f"; skipped: {'; '.join(skipped)}" if skipped else ""
        raise NoFaceError(f"{name}: no face to edit in the {width}x{height} photo{why}")
    framing = editor.framing if framing == "auto" else framing
    alignments, crops = face_tools.align(photo.rgb, found, editor.image_size, framing)
    if grey_model:
        crops = _grey(crops)
    batch = np.concatenate([crops] * len(targets))
    mask = face_tools.feather_mask(editor.image_size, framing)
    clock("align")
    if attention:
        return _paste_parts(editor, photo, found, alignments, batch, targets, mask, skipped, grey_model, clock)
    edited = editor.edit(batch, [target for target in targets for _ in found])
    clock("edit")
    results = []
    for index in range(len(targets)):
        result = photo.rgb
        for face, (alignment, crop) in enumerate(zip(alignments, crops)):
            output = edited[index * len(found) + face]
            if grey_model:
                change = np.repeat(_grey_float(output - crop.astype(np.float32))[..., None], 3, axis=-1)
            elif paste == "change":
                change = output - crop.astype(np.float32)
            else:
                result = face_tools.paste(result, alignment, output, mask, replace=True)
                continue
            result = face_tools.paste(result, alignment, change, mask)
        results.append(result)
    clock("paste")
    return Edited(photo, found, alignments, results, skipped, paste=paste)


class _Clock:
    """Calling it with a stage's name stores the seconds since the last call (or its creation) under it."""

    def __init__(self, timings: Optional[Dict[str, float]]):
        self.timings, self.last = timings, time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[stage] = self.timings.get(stage, 0.0) + now - self.last
        self.last = now


def _paste_parts(editor, photo, found, alignments, batch, targets, feather, skipped, grey_model, clock) -> Edited:
    """An attention generator's edits composited at the photo's resolution: photo + A * (C - photo),
    with C and A scaled up through the inverse alignment and A faded out by the feathered ellipse.
    A generator with a shading ratio (LEGAN's lighting_output="ratio") first multiplies the photo by
    its ratio, scaled up the same way and faded out by the ellipse; the composite is then made on the
    shaded photo, as the generator makes it on the crop.
    With `grey_model` the composite is made on the photo's grey levels and only its change of
    brightness is added to the colour photo."""
    per_face = [target for target in targets for _ in found]
    colors, masks, ratios = editor.edit_parts_and_shading(batch, per_face)
    clock("edit")
    if grey_model:  # a grey model's colour map is grey levels: any tint between its channels is not a change
        colors = np.repeat(_grey_float(colors)[..., None], 3, axis=-1)
    # A residual colour map is the crop plus a change: the change alone is scaled up and added, so the
    # photo keeps its own detail under the mask too (a painted map replaces the pixels there).
    residual = editor.residual_colour
    if residual:
        colors = colors - batch.astype(np.float32)
    grey_photo = _grey(photo.rgb) if grey_model else None
    # The composite changes the photo inside the faces' footprints only: the change of grey level is taken
    # in the box around them.
    x0, y0, x1, y1 = _footprints_box(alignments, photo.rgb.shape)
    results = []
    for index in range(len(targets)):
        result = grey_photo if grey_model else photo.rgb
        for face, alignment in enumerate(alignments):
            item = index * len(found) + face
            if ratios is not None:
                result = face_tools.shade(result, alignment, ratios[item], feather)
            result = face_tools.paste(result, alignment, colors[item], feather * masks[item], replace=not residual)
        if grey_model:
            change = result[y0:y1, x0:x1].astype(np.int16) - grey_photo[y0:y1, x0:x1].astype(np.int16)
            result = photo.rgb.copy()
            result[y0:y1, x0:x1] = np.clip(result[y0:y1, x0:x1].astype(np.int16) + change, 0, 255).astype(np.uint8)
        results.append(result)
    clock("paste")
    return Edited(photo, found, alignments, results, skipped, paste="attention", masks=masks)


def _footprints_box(alignments, shape):
    """(x0, y0, x1, y1): the box around every alignment's footprint in a photo of `shape` (empty: (0, 0, 0, 0))."""
    boxes = [alignment.footprint(shape) for alignment in alignments]
    boxes = [box for box in boxes if box[0] < box[2] and box[1] < box[3]]
    if not boxes:
        return 0, 0, 0, 0
    x0, y0 = min(box[0] for box in boxes), min(box[1] for box in boxes)
    return x0, y0, max(box[2] for box in boxes), max(box[3] for box in boxes)


def _grey_float(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def strip(edited: Edited, titles: Sequence[str], cell: int = STRIP_CELL, context: float = STRIP_CONTEXT,
          row_titles: Sequence[str] = ()) -> np.ndarray:
    """A figure: a row per face, the photo's face then the face in each edited photo (upright, the
    canonical crop widened `context` times around its centre, so the feathered edge shows, at `cell` px).
    With row_titles, the edits are len(row_titles) x len(titles) (row by row) and each face takes one row
    per row title, the title written at its left."""
    from legan_tf import visualize

    def framed(alignment):
        factor = cell / (alignment.size * context)
        matrix = alignment.matrix * factor
        matrix[:, 2] += cell / 2.0 - alignment.size / 2.0 * factor
        return face_tools.Alignment(matrix, cell)

    frames = [framed(alignment) for alignment in edited.alignments]
    columns = [edited.photo.rgb] + list(edited.results)
    cells = [np.stack([frame.crop(image) for frame in frames]) for image in columns]
    if not row_titles:
        return visualize.titled_mosaic(cells, ["photo", *titles], min_cell=cell)
    # One row per face and row title: the edits come row title by row title, len(titles) to a row.
    faces, per_row = len(frames), len(titles)
    edits = np.stack(cells[1:]).reshape(len(row_titles), per_row, faces, cell, cell, 3)
    edits = edits.transpose(1, 2, 0, 3, 4, 5).reshape(per_row, faces * len(row_titles), cell, cell, 3)
    photos = np.repeat(cells[0], len(row_titles), axis=0)
    labels = [title for _ in range(faces) for title in row_titles]
    return visualize.row_labelled_mosaic([photos, *edits], ["photo", *titles], labels, min_cell=cell)


def edit_photo(model: str, input_path: str, output_path: str, expression: Optional[str] = None,
               lighting: Optional[str] = None, all_expressions: bool = False, all_lightings: bool = False,
               jpeg_quality: int = 95, attributes: Optional[str] = None,
               paste: str = "auto", grey_model: bool = False, detector: str = "auto",
               min_face_size: float = face_tools.MIN_FACE_SIZE, max_pixels: int = face_tools.MAX_PIXELS,
               detect_max_side: int = face_tools.DETECT_MAX_SIDE, editor: Optional[Editor] = None,
               framing: str = "auto") -> dict:
    """Edits every face of the photo at input_path and writes output_path (module docstring).

    With all_expressions (all_lightings) the output is a strip instead: the faces, then one column per
    expression (lighting); with both, a grid per face, a row per lighting and a column per expression.
    Returns what was done. Raises ConfigError (bad flag, model or photo) and NoFaceError.
    """
    if not 1 <= jpeg_quality <= 100:
        raise ConfigError(f"--jpeg_quality must be in 1..100, got {jpeg_quality}")
    if framing != "auto" and framing not in face_tools.FRAMINGS:
        raise ConfigError(f"--framing={framing}: unknown; auto or one of {', '.join(face_tools.FRAMINGS)}")
    face_tools.output_format(output_path)
    if os.path.exists(output_path) and os.path.samefile(output_path, input_path):
        raise ConfigError(f"--output={output_path} is the input photo; write the edit to another file")
    photo = face_tools.load_photo(input_path, max_pixels)
    editor = editor or load_editor(model)
    targets = resolve_targets(editor.label_names, expression, lighting, all_expressions, all_lightings, attributes)
    finder = face_tools.FaceFinder(detector, min_face_size=min_face_size, detect_max_side=detect_max_side)
    framing = editor.framing if framing == "auto" else framing
    edited = edit_faces(editor, photo, finder, targets, paste, grey_model, name=input_path, framing=framing)
    if all_expressions or all_lightings:
        if all_expressions and all_lightings:
            figure = strip(edited, list(editor.label_names["expression"]),
                           row_titles=list(editor.label_names["lighting"]))
        else:
            figure = strip(edited, [target["expression" if all_expressions else "lighting"] for target in targets])
        face_tools.save_photo(face_tools.Photo(figure, None, "RGB", None, None), figure, output_path, jpeg_quality)
    else:
        face_tools.save_photo(photo, edited.results[0], output_path, jpeg_quality)
    height, width = photo.rgb.shape[:2]
    return {"input": input_path, "output": output_path, "model": editor.source, "size": (width, height),
            "faces": [face.describe() for face in edited.faces], "skipped": edited.skipped,
            "targets": targets, "image_size": editor.image_size, "paste": edited.paste,
            "framing": framing}


def summary(outcome: dict) -> str:
    targets = outcome["targets"]
    varied = [key for key in targets[0] if len({target[key] for target in targets}) > 1]
    what = ", ".join(f"{key}={value}" for key, value in targets[0].items()) if len(targets) == 1 else \
        f"each of {len(targets)} {' x '.join(varied)} targets"
    lines = [f"edited {len(outcome['faces'])} face(s) of {outcome['input']} ({outcome['size'][0]}x"
             f"{outcome['size'][1]}) to {what} with {outcome['model']} ({outcome['image_size']} px, "
             f"{outcome.get('framing', face_tools.DEFAULT_FRAMING)} framing)"]
    lines += [f"  {face}" for face in outcome["faces"]]
    if outcome["skipped"]:
        lines.append(f"skipped {len(outcome['skipped'])} face(s):")
        lines += [f"  {reason}" for reason in outcome["skipped"]]
    if outcome.get("paste") == "attention":
        lines.append("pasted at the photo's resolution under the generator's mask (its own pixels kept where "
                     "the mask is off)")
    lines.append(f"written to {outcome['output']}")
    return "\n".join(lines)
