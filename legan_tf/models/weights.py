"""Getting published weights into a network, and refusing files that do not fit: the one copy of these helpers.

Used by the perceptual loss's VGG19 (`legan_tf.models.perceptual`), FID/KID's Inception-v3
(`legan_tf.evaluation.metrics.features`), and the .npz weights of LightCNN and LPIPS. They exist because
the library calls they wrap fail in ways this project must not accept:

- `keras_cache_download`: `keras.utils.get_file` waits forever on a connection that hangs (urllib's
  default has no timeout), so it runs under a socket timeout; a cached file that matches the MD5 is
  used without the network.
- `load_all_weights`: Keras 3 loads a .weights.h5 of other layers without an error, leaving the
  model half random; every variable is poisoned with NaN first, so a variable the file did not set
  is found and refused.
- `load_npz_arrays`: `np.load` of a file that is not an .npz raises one of several types, or returns
  a single array; both become a ConfigError that says what the file should have been.
- `load_saved_model`: a missing, unreadable or other network's .keras file is a ConfigError too.

Nothing here falls back to random weights. Messages name the file as the caller `described` it (its
flag, usually) and end with the caller's `hint` of what to do.
"""

import os
import socket
import warnings
import zipfile

import keras
import numpy as np

from legan_tf.errors import ConfigError

# Per connect or read, for downloads of published weights: long enough for a slow mirror, short
# enough that a firewall dropping packets ends the run with an error instead of a hang.
DOWNLOAD_TIMEOUT_S = 30.0
# `keras.utils.get_file`'s folder under Keras' cache, where `keras.applications` keep their weights.
CACHE_SUBDIR = "models"


def keras_home() -> str:
    """Keras' cache folder as keras.utils.get_file picks it: $KERAS_HOME, else ~/.keras, else /tmp/.keras.

    Computed here (get_file does not say where it looks) so that a failed download can tell the
    user where to copy the file by hand.
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return home if os.access(home, os.W_OK) else os.path.join("/tmp", ".keras")


def keras_cache_path(filename: str) -> str:
    """Where `keras_cache_download(filename, ...)` keeps its copy: the place to put a file fetched elsewhere."""
    return os.path.join(keras_home(), CACHE_SUBDIR, filename)


def keras_cache_download(filename: str, url: str, md5: str, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> str:
    """Keras' cached copy of `url` (`keras_cache_path(filename)`), downloading it (once) when absent or
    not matching `md5`. Raises what `keras.utils.get_file` raises (a bare Exception for URL failures).

    A hung connection fails after `timeout_s` per connect or read instead of never: urllib waits
    forever by default, so the process-wide socket timeout is set for the call and restored after.
    """
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        return keras.utils.get_file(filename, url, cache_subdir=CACHE_SUBDIR, file_hash=md5, cache_dir=keras_home())
    finally:
        socket.setdefaulttimeout(previous_timeout)


def load_all_weights(model, path: str, described: str, network: str, hint: str) -> None:
    """Loads a weights file into `model` and checks that it set every variable (ConfigError otherwise).

    Keras 3 loads a .weights.h5 that holds more (or other) layers than the model without an error,
    so every variable is first set to NaN: one still NaN afterwards was not in the file.
    `described` names the file (and its flag), `network` the architecture, `hint` what to do.
    """
    for variable in model.weights:
        variable.assign(np.full(variable.shape, np.nan, variable.dtype))
    try:
        with warnings.catch_warnings():
            # Keras warns per layer it skips; the NaN check below says it once, as an error.
            warnings.filterwarnings("ignore", message="Skipping ")
            model.load_weights(path)
    except Exception as error:  # h5py, legacy-h5 and Keras-format loaders raise various types
        raise ConfigError(f"{described}: not weights of {network} ({type(error).__name__}: {short_error(error)}); "
                          f"{hint}.") from None
    missing = [variable.path for variable in model.weights if np.isnan(keras.ops.convert_to_numpy(variable)).any()]
    if missing:
        raise ConfigError(f"{described}: not weights of {network}: {len(missing)} of its {len(model.weights)} "
                          f"variables (e.g. {missing[0]}) are not in the file; {hint}.")


def load_npz_arrays(path: str, described: str, what: str, hint: str) -> dict:
    """The named arrays of the .npz at `path` (name -> array), read without pickles.

    A file that is not an .npz, or is a single .npy array, is a ConfigError: "`described`: not an
    .npz of `what` (...); `hint`." Whether the file exists is the caller's to check first (its
    advice for a missing file differs from that for a wrong one).
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ConfigError(f"{described}: not an .npz of {what} ({error}); {hint}.") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ConfigError(f"{described}: a single array, not an .npz of named {what}; {hint}.")
    with archive:
        return {key: archive[key] for key in archive.files}


def short_error(error, limit: int = 240) -> str:
    """An exception's message on one line, cut to `limit` characters: Keras' can run to pages, and it
    is quoted inside a ConfigError whose advice must stay readable."""
    text = " ".join(str(error).split()) or "no message"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load_saved_model(path: str, what: str, where: str, expected=None, hint: str = ""):
    """A saved .keras network; a missing or unreadable file is a ConfigError naming `where` (the file as the
    caller's flag gives it). With `expected` (a class or a tuple of classes), a network of another class is
    a ConfigError too ("a X, not a Y", then `hint`). The networks' modules must be imported (registered)."""
    if not os.path.isfile(path):
        raise ConfigError(f"{where}: no such {what} file.")
    try:
        model = keras.models.load_model(path)
    except (OSError, ValueError, TypeError) as error:
        raise ConfigError(f"{path}: cannot load the {what} ({error}).") from None
    if expected is not None and not isinstance(model, expected):
        names = " or ".join(kind.__name__ for kind in (expected if isinstance(expected, tuple) else (expected,)))
        found = type(model).__name__
        raise ConfigError(f"{path}: {_article(found)} {found}, not {_article(names)} {names}{hint}.")
    return model


def _article(name: str) -> str:
    return "an" if name[:1] in "AEIOU" else "a"
