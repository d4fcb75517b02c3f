"""What `scripts/train.py` does: flags -> data -> task -> the training loop, in a run directory.

Every flag derives from a settings dataclass declared once: `TrainingSettings` (legan_tf/runs/settings.py),
`DataConfig` (legan_tf/data/config.py) and each recipe's `Hyperparameters`; a run's flags.txt holds
the first two and the chosen recipe's. Two backends run the same tasks through one loop
(legan_tf/training/loop.py): TensorFlow (tf.data input, tf.distribute strategies, tensorflow_backend)
and JAX (numpy input from prepared shards, keras.distribution, jax_backend). Only the chosen
backend's modules are imported, so the JAX path runs where TensorFlow is not installed.
"""

import inspect
import os

import keras
from absl import flags, logging

from legan_tf import backend, hparams, optimizers, precision, tasks
from legan_tf.data.flags import data_config_from_flags, data_flag_values, define_data_flags
from legan_tf.errors import ConfigError
from legan_tf.runs import RunDir, flagfile_text
from legan_tf.runs.settings import TrainingSettings
from legan_tf.training.backend_api import check_trained_under
from legan_tf.training.loop import TrainingLoop

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Every flag of the training entry point; safe to call more than once."""
    if "task" in flag_values:
        return
    define_data_flags(flag_values)
    tasks.define_flags(flag_values)
    hparams.define_flags(TrainingSettings, "", __name__, flag_values,
                         help_overrides={"task": f"Recipe to train: {', '.join(tasks.task_names())}."})


def training_settings(flag_values: flags.FlagValues = FLAGS) -> TrainingSettings:
    """The TrainingSettings the flags give (a bad combination is a ConfigError)."""
    return TrainingSettings(**hparams.read_flags(TrainingSettings, "", flag_values))


def _task_kwargs(task_class, flag_values: flags.FlagValues = FLAGS) -> dict:
    """The recipe's hyperparameters from its flags, and the run seed."""
    return {**tasks.hyperparameters_from_flags(task_class, flag_values), "seed": flag_values["seed"].value}


def other_recipes_flags(task_class, flag_values: flags.FlagValues = FLAGS) -> list:
    """[(flag, its recipe class)] of the flags given (on the command line or in a flagfile) that belong to
    another recipe than `task_class`: the run trains with nothing of them."""
    return [(flag_values[name], other) for other in tasks.task_classes() if other is not task_class
            for name in hparams.flag_names(other.Hyperparameters, other.prefix()) if flag_values[name].present]


def check_other_recipes_flags(task_class, flag_values: flags.FlagValues = FLAGS) -> None:
    """Another recipe's flag given with a value other than its default is a ConfigError naming it; given at
    its default (a flags.txt of legan-tf 0.1.0 lists every recipe's flags) it is ignored, with one warning
    naming them all."""
    ignored = []
    for flag, other in other_recipes_flags(task_class, flag_values):
        if flag.value != flag.default:
            raise ConfigError(f"{flag.serialize()} is a flag of the {other.name!r} recipe, which --task="
                              f"{task_class.name} does not use (its flags start with --{task_class.prefix()}): "
                              "the run would ignore it.")
        ignored.append(f"--{flag.name}")
    if ignored:
        logging.warning("Ignored %d flag(s) of other recipes than --task=%s, all at their defaults: %s",
                        len(ignored), task_class.name, " ".join(ignored))


def run_flag_values(task_class, settings: TrainingSettings, flag_values: flags.FlagValues = FLAGS) -> dict:
    """The lines of the run's flags.txt, by flag name: the training settings it records, the data flags
    and the recipe's own hyperparameters."""
    recipe = {name: flag_values[name].value
              for name in hparams.flag_names(task_class.Hyperparameters, task_class.prefix())}
    return dict(sorted({**settings.recorded_values(), **data_flag_values(flag_values), **recipe}.items()))


def _data_kwargs(task_class, train_source) -> dict:
    """What a task may take from the training data itself, by constructor argument name."""
    parameters = inspect.signature(task_class.__init__).parameters
    kwargs = {}
    if "identities" in parameters:  # a face-recognition task's classes: the training split's identities
        kwargs["identities"] = tuple(int(i) for i in train_source.identities())
    if "data_features" in parameters:  # what each example holds (e.g. depth), for recipes that need more than images
        kwargs["data_features"] = tuple(train_source.features)
    return kwargs


def _open_sources(data_config):
    """(train, held-out or None) sources of the backend's input pipeline."""
    if backend.name() == "jax":
        from legan_tf.data.numpy_input import open_numpy_source as open_source
    else:
        from legan_tf.data import open_source
    source = open_source(data_config)
    # Always through split(): TFRecord shards may carry a held-out split that prepare_data stored.
    train_source, eval_source = source.split(data_config.holdout_fraction, data_config.split_seed)
    if eval_source.num_examples == 0:
        logging.warning("No held-out data (--holdout_fraction=%s): the run reports training metrics only.",
                        data_config.holdout_fraction)
        eval_source = None
    return train_source, eval_source


def _make_task(task_class, train_source, data_config, settings: TrainingSettings):
    """The recipe, built before the run directory exists, so a setting it refuses leaves nothing behind."""
    optimizers.set_skip_non_finite(settings.on_nan == "skip")
    # Before the task builds its networks: each layer takes the global policy when it is made.
    precision.set_policy(settings.mixed_precision)
    task = task_class(
        label_names=train_source.label_names,
        image_size=data_config.image_size,
        global_batch_size=settings.batch_size,
        train_steps=settings.train_steps,
        learning_rate=settings.learning_rate,
        **_task_kwargs(task_class),
        **_data_kwargs(task_class, train_source),
    )
    task.prepare()
    return task


def _training_input(task, train_source):
    """The training source with what the recipe reads beyond each face's own record: its copies under other
    lights (`legan_tf.data.lighting_copies`) for a recipe that learns from them. Before the run directory
    exists, so data that cannot give them is a one-line error that leaves nothing behind."""
    if not getattr(task, "needs_lighting_copies", False):
        return train_source
    paired = train_source.with_lighting_copies()
    logging.info("Paired lighting: %d of the training subjects have copies under two or more lights.",
                 paired.pairable_faces)
    if not paired.pairable_faces:
        logging.warning("Paired lighting: no training face has a copy under another light, so the paired term "
                        "stays 0.")
    return paired


def _open_run_dir(settings: TrainingSettings, values, train_source, chief=True, share=None) -> RunDir:
    """The run directory: --resume's, or a new one. `share(path)` gives every worker of a cluster the
    chief's path: the chief alone creates the folder, which must lie on storage every worker sees."""
    name = settings.run_name or settings.task
    if settings.resume:
        run = RunDir.for_resume(settings.resume)
    elif share is not None:
        run = RunDir(share(RunDir.create(settings.runs_root, name).path if chief else ""))
        if not chief and not os.path.isdir(run.path):
            raise ConfigError(f"The chief's run directory {run.path} is not visible from this worker: with "
                              "--strategy=multi_worker, --runs_root must be storage every worker sees (a shared "
                              "file system or a bucket), as docs/distributed.md says.")
    else:
        run = RunDir.create(settings.runs_root, name)
    if chief:
        run.write_flags(values)
        # The exported models take label names, not ids: keep them with the run, not only with the data.
        run.write_label_names(train_source.label_names)
    logging.info("Run directory: %s", run.path)
    return run


def _finished(run_dir, metrics):
    print(f"Finished: {run_dir}" + ("".join(f"\n  {name}: {value:.4f}" for name, value in metrics.items())), flush=True)


def run() -> dict:
    """Trains the task named by --task; returns the final held-out metrics."""
    settings = training_settings()
    if settings.resume:
        _check_resumable(RunDir.open(settings.resume, "--resume"), settings)
    settings.check_backend(backend.name())
    task_class = tasks.get_task_class(settings.task)
    check_other_recipes_flags(task_class)
    values = run_flag_values(task_class, settings)
    if backend.name() == "jax":
        return _run_jax(settings, task_class, values)
    return _run_tensorflow(settings, task_class, values)


def _check_resumable(run: RunDir, settings: TrainingSettings) -> None:
    """A run resumes under the backend and as the recipe it trained with. Checked before the flags: a resumed
    run reads its own flags.txt, which holds its backend's and its recipe's flags."""
    check_trained_under(run, backend.name())
    if run.task and run.task != settings.task:
        raise ConfigError(f"--resume={run.path}: the run trains --task={run.task}, not --task={settings.task}; "
                          "a run keeps its recipe (start a new run for another).")


def _dry_run(values, train_source, eval_source) -> dict:
    print("# Resolved configuration (a flagfile):")
    print(flagfile_text(values))
    print("# Training data")
    print(train_source.summary())
    if eval_source is not None:
        print("# Held-out data")
        print(eval_source.summary())
    return {}


def _run_jax(settings, task_class, values) -> dict:
    from legan_tf.training.jax_backend import JaxBackend, data_parallel_devices

    data_config = data_config_from_flags(FLAGS)
    train_source, eval_source = _open_sources(data_config)
    if settings.dry_run:
        return _dry_run(values, train_source, eval_source)
    if settings.deterministic:
        # Read when JAX's backends start, on the first device query below. XLA on CPU is deterministic already.
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true").strip()
    keras.utils.set_random_seed(settings.seed)
    devices = data_parallel_devices(settings.devices)
    task = _make_task(task_class, train_source, data_config, settings)
    train_source = _training_input(task, train_source)
    steps = JaxBackend(task, devices, settings.input_processes)  # before the networks are built
    run = _open_run_dir(settings, values, train_source)
    print(f"Run directory: {run.path}\nBackend: jax, {len(devices)} {devices[0].platform} device(s), "
          f"global batch {settings.batch_size}", flush=True)
    metrics = TrainingLoop(task, steps, run, train_source, eval_source, settings).run()
    _finished(run.path, metrics)
    return metrics


def _run_tensorflow(settings, task_class, values) -> dict:
    import tensorflow as tf

    from legan_tf.data import distribute
    from legan_tf.serving import export
    from legan_tf.training.strategy import (broadcast_from_chief, create_strategy, is_multi_worker,
                                            split_cpu_into_logical_devices)
    from legan_tf.training.tensorflow_backend import TensorFlowBackend

    if settings.cpu_replicas:
        # Before anything touches a device: logical devices cannot be added once TF has initialised.
        split_cpu_into_logical_devices(settings.cpu_replicas)
    data_config = data_config_from_flags(FLAGS)
    train_source, eval_source = _open_sources(data_config)
    if settings.dry_run:
        return _dry_run(values, train_source, eval_source)

    tf.keras.utils.set_random_seed(settings.seed)
    if settings.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = create_strategy(settings.strategy, settings.tpu_address)
    replicas = strategy.num_replicas_in_sync
    if settings.batch_size % replicas:
        raise ConfigError(f"--batch_size={settings.batch_size} does not split evenly over {replicas} replicas.")
    task = _make_task(task_class, train_source, data_config, settings)
    train_source = _training_input(task, train_source)
    steps = TensorFlowBackend(task, strategy, distribute, jit_compile=settings.jit_compile)
    share = (lambda path: broadcast_from_chief(strategy, path)) if is_multi_worker(strategy) else None
    run = _open_run_dir(settings, values, train_source, chief=steps.chief, share=share)
    print(f"Run directory: {run.path}\nStrategy: {settings.strategy}, {replicas} replica(s), "
          f"global batch {settings.batch_size}", flush=True)
    metrics = TrainingLoop(task, steps, run, train_source, eval_source, settings).run()
    _finished(run.path, metrics)
    if settings.export_to and steps.chief:
        exported = export.export_run(run.path, settings.export_to)
        print(export.serving_commands(exported, settings.export_to, run.path), flush=True)
    return metrics
