"""Run directories: everything one training run produces lives in one folder.

    <root>/<name>-<YYYYmmdd-HHMMSS>/
        flags.txt       resolved flags; `--flagfile=flags.txt` reproduces the run
        checkpoints/    tf.train.Checkpoint files (resume with --resume=<run dir>)
        logs/           TensorBoard event files
        samples/        sample grids as PNG
        metrics.jsonl   one JSON line per evaluation
"""

import datetime
import json
import os
from absl import flags, logging

from legan_tf.errors import ConfigError

FLAGFILE_NAME = "flags.txt"
LABELS_FILE = "labels.json"
SUBDIRS = ("checkpoints", "logs", "samples")
# Flags that say where or whether to run, not what to run: left out so the saved flagfile
# starts a new run of the same configuration rather than resuming or dry-running.
_NOT_REPRODUCED = frozenset({"resume", "dry_run", "flagfile", "run_name_suffix", "export_to"})


def new_run_dir(root: str, name: str, now: datetime.datetime | None = None) -> str:
    """Creates `<root>/<name>-<timestamp>` with its subfolders and returns the path."""
    stamp = (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    path = os.path.join(root, f"{name}-{stamp}")
    suffix = 1
    while os.path.exists(path):  # two runs started in the same second
        path = os.path.join(root, f"{name}-{stamp}-{suffix}")
        suffix += 1
    try:
        for subdir in SUBDIRS:
            os.makedirs(os.path.join(path, subdir))
        probe = os.path.join(path, ".write-test")
        with open(probe, "w") as handle:  # a folder that exists but takes no files fails here, not mid-run
            handle.write("ok")
        os.remove(probe)
    except OSError as error:
        raise ConfigError(f"--runs_root={root}: cannot create the run directory {path} "
                          f"({error.strerror or error}).") from None
    return path


def existing_run_dir(path: str) -> str:
    """Validates a run directory given to --resume."""
    if not os.path.isdir(path):
        raise ConfigError(f"--resume={path}: no such run directory.")
    if not os.path.isfile(os.path.join(path, FLAGFILE_NAME)):
        raise ConfigError(f"--resume={path}: not a run directory (it has no {FLAGFILE_NAME}).")
    try:
        for subdir in SUBDIRS:
            os.makedirs(os.path.join(path, subdir), exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--resume={path}: cannot write into the run directory ({error.strerror or error}).") from None
    return path


def project_flag_values(flag_values: flags.FlagValues) -> dict[str, object]:
    """The values of the flags this project defines (not absl's or TensorFlow's own)."""
    values = {}
    for module, module_flags in flag_values.flags_by_module_dict().items():
        # absl keys the main script's flags by its path (scripts/train.py) and library flags by module name.
        in_project = module.startswith("legan_tf") or module == "__main__" or (
            module.endswith(".py") and "site-packages" not in module
        )
        if in_project:
            values.update({flag.name: flag.value for flag in module_flags if flag.name not in _NOT_REPRODUCED})
    return dict(sorted(values.items()))


def flagfile_text(values: dict[str, object]) -> str:
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


def write_flagfile(run_dir: str, values: dict[str, object]) -> str:
    path = os.path.join(run_dir, FLAGFILE_NAME)
    previous = read_flagfile(path) if os.path.exists(path) else None
    text = flagfile_text(values)
    if previous is not None and previous != text:
        changed = sorted(set(previous.splitlines()) ^ set(text.splitlines()))
        logging.warning("Resuming with changed flags (old and new lines): %s", "; ".join(changed))
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        os.replace(path, os.path.join(run_dir, f"flags.before-{stamp}.txt"))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def parse_run_flags(run_dir: str, flag_values: flags.FlagValues) -> flags.FlagValues:
    """Parses into `flag_values` the lines of `<run_dir>/flags.txt` that set flags it defines.

    `flag_values` is the caller's private FlagValues, so a script can read a run's settings without
    touching its own flags; lines for flags it does not define are ignored.
    """
    path = os.path.join(run_dir, FLAGFILE_NAME)
    if not os.path.isdir(run_dir):
        raise ConfigError(f"--run_dir={run_dir}: no such run directory.")
    if not os.path.isfile(path):
        raise ConfigError(f"--run_dir={run_dir}: not a run directory (it has no {FLAGFILE_NAME}).")
    arguments = []
    for line in read_flagfile(path).splitlines():
        line = line.strip()
        name = line[2:].partition("=")[0]
        if line.startswith("--") and (name in flag_values or (name.startswith("no") and name[2:] in flag_values)):
            arguments.append(line)
    try:
        flag_values([FLAGFILE_NAME, *arguments])
    except flags.Error as error:
        raise ConfigError(f"{path}: {error}") from None
    return flag_values


def read_flagfile(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def append_metrics(run_dir: str, step: int, metrics: dict[str, float]) -> None:
    record = {"step": int(step), **{name: float(value) for name, value in metrics.items()}}
    with open(os.path.join(run_dir, "metrics.jsonl"), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    with open(os.path.join(run_dir, "metrics.json"), "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)


def write_run_labels(run_dir: str, label_names) -> str:
    """Stores the training data's label names in the run, so its models export without the data."""
    path = os.path.join(run_dir, LABELS_FILE)
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({k: list(v) for k, v in label_names.items()}, indent=2) + "\n")
    os.replace(temporary, path)
    return path
