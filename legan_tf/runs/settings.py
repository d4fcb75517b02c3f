"""The settings of a training run, declared once: `TrainingSettings`, a frozen dataclass of `hparam` fields.

From it derive the training flags of scripts/train.py (`legan_tf.training.train_lib` defines them),
the settings the training loop reads, and the training lines of a run's flags.txt
(`TrainingSettings.recorded_values`). A field's metadata says what else is known about it:
`backend` names the only Keras backend it means something under (set under the other one, it is an
error: `check_backend`), and `recorded=False` keeps a flag that says where or whether to run, not
what to run, out of flags.txt. `RunDir.settings().training` reads a run's back.
"""

from __future__ import annotations

import dataclasses

from legan_tf import backend, precision
from legan_tf.errors import ConfigError
from legan_tf.hparams import hparam

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")  # tf.distribute, TensorFlow backend only
ON_NAN = ("stop", "skip")
BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX"}


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """What scripts/train.py trains, where and how, beside the data's and the recipe's own settings."""

    task: str = hparam("classifier", "Recipe to train (a module of legan_tf/tasks/).")
    backend: str = hparam(
        "tensorflow", "Keras backend to train on: tensorflow (tf.data, tf.distribute) or jax (GPUs without "
        "TensorFlow; reads TFRecord shards from scripts/prepare_data.py; pip install legan-tf[jax]). "
        "Same recipes, flags, run directory and .keras outputs. Default: $KERAS_BACKEND, else tensorflow.",
        choices=backend.BACKENDS, env="KERAS_BACKEND")
    devices: int = hparam(
        1, "JAX backend: local devices to train on with keras.distribution.DataParallel (the batch is split over "
        "them); 0 uses all. TensorFlow uses --strategy instead.", lower_bound=0, backend="jax")
    input_processes: int = hparam(
        0, "JAX backend: decode training batches in this many worker processes (0: threads of this process). "
        "Threads stop scaling at Python's GIL; on a GPU machine with many cores, processes keep the GPU fed "
        "(docs/backends.md).", lower_bound=0, backend="jax")
    strategy: str = hparam(
        "default", "TensorFlow backend: distribution: default (one device), mirrored (all local GPUs), "
        "multi_worker (TF_CONFIG cluster), tpu.", choices=STRATEGIES, backend="tensorflow")
    cpu_replicas: int = hparam(
        0, "Split the CPU into this many logical devices (0: leave it whole), so --strategy=mirrored runs several "
        "replicas without GPUs: for trying distribution on a laptop.", lower_bound=0, backend="tensorflow")
    tpu_address: str = hparam("", "TPU name or grpc:// address for --strategy=tpu.", backend="tensorflow")
    jit_compile: bool = hparam(
        False, "TensorFlow backend: compile each update's loss and gradients with XLA (the optimizer's apply, "
        "which all-reduces across replicas, stays outside). Pays on GPUs; on CPUs XLA's convolutions are slower "
        "than oneDNN's (docs/benchmarks.md). The JAX backend always compiles.", backend="tensorflow",
        note="the JAX trainer always compiles its updates")
    mixed_precision: str = hparam(
        "float32", "Compute dtype of the networks (weights, losses, the gradient penalty's norm and the saved "
        "models stay float32): mixed_float16 for GPUs with tensor cores (with dynamic loss scaling), "
        "mixed_bfloat16 for TPUs, recent GPUs and CPUs with AVX512-BF16/AMX; float32 elsewhere "
        "(docs/benchmarks.md has this CPU's figures).", choices=precision.POLICIES)
    profile_steps: tuple[str, ...] = hparam(
        (), "TensorFlow backend: trace steps FIRST,LAST with the TensorFlow profiler (e.g. 20,25: after the first "
        "steps' tracing) into <run>/logs (TensorBoard's Profile tab, with pip install tensorboard-plugin-profile) "
        "and write <run>/logs/profile_summary.md, the kernel time of each op type.", backend="tensorflow")
    runs_root: str = hparam("runs", "Folder that holds run directories.")
    run_name: str = hparam("", "Run directory name prefix (default: the task name); a timestamp is appended.")
    resume: str = hparam("", "Continue the run in this run directory from its latest checkpoint.", recorded=False)
    dry_run: bool = hparam(False, "Print the resolved configuration and a summary of the data, then exit.",
                           recorded=False)
    batch_size: int = hparam(32, "Global batch size, split evenly over replicas.", lower_bound=1)
    train_steps: int = hparam(1000, "Total optimisation steps of the run.", lower_bound=1)
    learning_rate: float = hparam(1e-3, "Adam learning rate.", lower_bound=0.0)
    log_every: int = hparam(50, "Steps between TensorBoard scalars.", lower_bound=1)
    sample_every: int = hparam(500, "Steps between sample grids (samples/ and TensorBoard).", lower_bound=1)
    eval_every: int = hparam(1000, "Steps between evaluations on the held-out split.", lower_bound=1)
    checkpoint_every: int = hparam(500, "Steps between checkpoints.", lower_bound=1)
    keep_checkpoints: int = hparam(3, "Checkpoints kept in the run directory.", lower_bound=1)
    num_samples: int = hparam(16, "Held-out images shown in each sample grid.", lower_bound=1)
    seed: int = hparam(0, "Seed for weights and data order.")
    progress_bar: bool = hparam(True, "Show a progress bar.")
    on_nan: str = hparam(
        "stop", "A loss or gradient that is NaN or infinite: stop the run (exit code 3; the last good checkpoint "
        "stays the latest), or skip that update (weights and optimizer moments unchanged) and count it, stopping "
        "only after --max_consecutive_skips in a row. Never checkpointed either way.", choices=ON_NAN)
    max_consecutive_skips: int = hparam(
        20, "With --on_nan=skip: stop after this many skipped updates in a row of one optimizer.", lower_bound=1)
    deterministic: bool = hparam(
        False, "Deterministic kernels (TensorFlow: tf.config.experimental.enable_op_determinism; JAX on GPUs: "
        "XLA's deterministic ops), so a run repeats bit for bit and a resumed run equals an uninterrupted one. "
        "Under TensorFlow it also turns oneDNN's kernels off (scripts/train.py sets TF_ENABLE_ONEDNN_OPTS=0 before "
        "TensorFlow loads): slower on CPU; an op without a deterministic kernel is an error.")
    stop_after_minutes: float = hparam(
        0.0, "Stop training after this many minutes of wall time (0: no limit) and end as a finished run does: "
        "checkpoint, samples, evaluation and exported models of the step reached. --resume continues to "
        "--train_steps (the learning-rate schedule follows --train_steps, not the time). For jobs with a time "
        "limit.", lower_bound=0.0, recorded=False)  # a job's limit, not the run's: a resumed run is not stopped
    export_to: str = hparam(
        "", "When training ends, export the run's models as SavedModels into this TF-Serving directory (as "
        "scripts/export.py does) and print the commands that serve them.", backend="tensorflow", recorded=False,
        note="export the run's .keras files afterwards with scripts/export.py under TensorFlow")

    def __post_init__(self):
        object.__setattr__(self, "profile_steps", tuple(str(step) for step in self.profile_steps))
        self.profile_window  # noqa: B018  (a bad --profile_steps fails here, before any work)
        if self.on_nan == "skip" and self.mixed_precision == "mixed_float16":
            raise ConfigError("--on_nan=skip with --mixed_precision=mixed_float16: float16's loss scaling already "
                              "skips every update whose gradients overflow (and lowers the scale); a NaN loss then "
                              "stops the run. Use --on_nan=stop, or mixed_bfloat16, which needs no loss scaling.")
        if self.stop_after_minutes and self.strategy == "multi_worker":
            # Each worker's clock would stop it at a different step, and the others would wait for it forever.
            raise ConfigError("--stop_after_minutes cannot stop a multi_worker cluster: its workers must stop at the "
                              "same step. Set --train_steps instead.")

    @property
    def profile_window(self) -> tuple:
        """(first, last) steps of --profile_steps, or () when none are traced."""
        if not self.profile_steps:
            return ()
        try:
            first, last = (int(value) for value in self.profile_steps)
        except ValueError:
            first = last = 0
        if not 1 <= first <= last:
            raise ConfigError(f"--profile_steps={','.join(self.profile_steps)}: give two steps FIRST,LAST with "
                              "1 <= FIRST <= LAST, e.g. --profile_steps=20,25.")
        return first, last

    def check_backend(self, running: str) -> None:
        """The backend Keras runs on is the one asked for, and no flag of the other backend is set."""
        if self.backend != running:
            raise ConfigError(f"--backend={self.backend}, but Keras was already imported with the {running} backend: "
                              f"set KERAS_BACKEND={self.backend} before importing keras (scripts/train.py does this "
                              "from --backend).")
        for field in dataclasses.fields(self):
            owner = field.metadata.get("backend")
            value = getattr(self, field.name)
            if owner is None or owner == running or value == field.default:
                continue
            note = field.metadata.get("note")
            shown = ",".join(value) if isinstance(value, tuple) else value
            raise ConfigError(f"--{field.name}={shown} is a {BACKEND_NAMES[owner]}-backend flag; it does nothing "
                              f"under --backend={running}{f' ({note})' if note else ''}.")

    def recorded_values(self) -> dict[str, object]:
        """{flag: value} of the settings flags.txt records (not those that say where or whether to run)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                if field.metadata.get("recorded", True)}


def not_recorded() -> frozenset:
    """The training flags that flags.txt leaves out, so that it starts the same run again."""
    return frozenset(field.name for field in dataclasses.fields(TrainingSettings)
                     if not field.metadata.get("recorded", True))
