"""Trained models that ship with the package: `--model=pretrained:<name>` wherever a model is taken.

Each model is a folder beside this file, shaped as a finished run directory (so every command that
reads a run reads it unchanged): the generator (`generator.keras`), its label names (`labels.json`), the
recipe it was trained with (`flags.txt`), a model card (`MODEL_CARD.md`: data and its terms, recipe,
measured figures, intended use, limitations) and `pretrained.json`, which holds what the card says in
a form code reads (the generator's SHA-256 among it, checked before the file is loaded).

    >>> from legan_tf import pretrained
    >>> pretrained.names()
    ['legan-fer2013-relit-64', 'stargan-fer2013-64']
    >>> generator = pretrained.load("stargan-fer2013-64")   # a Keras model
    >>> pretrained.label_names("stargan-fer2013-64")["expression"]
    ('angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise')

docs/pretrained.md lists the models and says which datasets' terms allow their weights to ship.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Tuple

from legan_tf.digests import file_sha256
from legan_tf.errors import ConfigError

PREFIX = "pretrained:"
ROOT = os.path.dirname(os.path.abspath(__file__))
INFO_FILE = "pretrained.json"
CARD_FILE = "MODEL_CARD.md"
GENERATOR_FILE = "generator.keras"
LABELS_FILE = "labels.json"
# What pretrained.json must hold: the card's figures are free-form, these are read by code.
INFO_KEYS = ("name", "task", "image_size", "grey_faces", "sha256", "bytes", "data", "summary")


def names() -> List[str]:
    """The shipped models' names, sorted."""
    return sorted(entry for entry in os.listdir(ROOT)
                  if os.path.isfile(os.path.join(ROOT, entry, INFO_FILE)))


def is_pretrained(model: str) -> bool:
    """Whether a --model value names a shipped model (`pretrained:<name>`)."""
    return isinstance(model, str) and model.startswith(PREFIX)


def folder(name: str, flag: str = "--model") -> str:
    """The folder of a shipped model; an unknown name is a ConfigError that lists the known ones."""
    name = name[len(PREFIX):] if is_pretrained(name) else name
    known = names()
    if name not in known:
        listed = ", ".join(f"{PREFIX}{entry}" for entry in known) or "none"
        raise ConfigError(f"{flag}={PREFIX}{name}: no such pretrained model; the package ships {listed}")
    return os.path.join(ROOT, name)


def resolve(model: str, flag: str = "--model") -> str:
    """A --model (or --run_dir) value with `pretrained:<name>` replaced by the shipped model's folder;
    any other value unchanged."""
    return folder(model, flag) if is_pretrained(model) else model


def info(name: str) -> Dict:
    """pretrained.json of a shipped model, checked for the keys code reads."""
    path = os.path.join(folder(name), INFO_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: unreadable ({error})") from None
    missing = [key for key in INFO_KEYS if key not in data]
    if missing:
        raise ConfigError(f"{path}: lacks {', '.join(missing)}")
    return data


def card(name: str) -> str:
    """The model card (Markdown)."""
    with open(os.path.join(folder(name), CARD_FILE), encoding="utf-8") as handle:
        return handle.read()


def label_names(name: str) -> Dict[str, Tuple[str, ...]]:
    """{attribute: class names}, in the order of the generator's label vector."""
    path = os.path.join(folder(name), LABELS_FILE)
    with open(path, encoding="utf-8") as handle:
        return {attribute: tuple(values) for attribute, values in json.load(handle).items()}


def verify(name: str) -> str:
    """The generator file's path, after checking it is the file the card describes (size and SHA-256):
    a checkout without Git LFS, a truncated download or an edited file is a ConfigError, not a model
    that loads and edits wrongly."""
    meta = info(name)
    path = os.path.join(folder(name), GENERATOR_FILE)
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: missing (the package ships it; reinstall legan-tf)")
    size = os.path.getsize(path)
    if size != int(meta["bytes"]) or file_sha256(path) != meta["sha256"]:
        raise ConfigError(f"{path}: {size} bytes whose SHA-256 is not the one {INFO_FILE} records "
                          f"({meta['bytes']} bytes, {meta['sha256'][:12]}...): a damaged copy; reinstall legan-tf")
    return path


def load(name: str):
    """The shipped generator as a Keras model (checked by `verify` first). Call it as the run's
    generator: `generator((images in [-1, 1], one-hot labels), training=False)`."""
    path = verify(name)
    import legan_tf.models  # noqa: F401  (registers the networks, so Keras can rebuild them)
    from legan_tf.models.weights import load_saved_model

    return load_saved_model(path, "generator", f"{PREFIX}{name}")
