"""What `scripts/train.py` does: flags -> data -> task -> trainer, in a run directory.

Two backends run the same tasks: TensorFlow (tf.data input, tf.distribute strategies,
`legan_tf.training.trainer`) and JAX (numpy input from prepared shards, keras.distribution,
`legan_tf.training.jax_trainer`). Only the chosen backend's modules are imported, so the JAX path
runs where TensorFlow is not installed.
"""

import inspect
import os

import keras
from absl import flags, logging

from legan_tf import backend, optimizers, precision, tasks
from legan_tf.data.flags import data_config_from_flags, define_data_flags
from legan_tf.errors import ConfigError
from legan_tf.training import run_dir as run_dirs
from legan_tf.training.config import STRATEGIES, TrainerConfig

FLAGS = flags.FLAGS


def _default_backend() -> str:
    """$KERAS_BACKEND when it names a backend this project trains on, else tensorflow."""
    requested = os.environ.get("KERAS_BACKEND", "")
    return requested if requested in backend.BACKENDS else "tensorflow"


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Every flag of the training entry point; safe to call more than once."""
    if "task" in flag_values:
        return
    define_data_flags(flag_values)
    tasks.define_flags(flag_values)
    into = {"flag_values": flag_values}
    flags.DEFINE_string("task", "classifier", f"Recipe to train: {', '.join(tasks.task_names())}.", **into)
    flags.DEFINE_enum("backend", _default_backend(), list(backend.BACKENDS),
                      "Keras backend to train on: tensorflow (tf.data, tf.distribute) or jax (GPUs without "
                      "TensorFlow; reads TFRecord shards from scripts/prepare_data.py; pip install legan-tf[jax]). "
                      "Same recipes, flags, run directory and .keras outputs. Default: $KERAS_BACKEND, else tensorflow.",
                      **into)
    flags.DEFINE_integer("devices", 1, "JAX backend: local devices to train on with keras.distribution.DataParallel "
                         "(the batch is split over them); 0 uses all. TensorFlow uses --strategy instead.",
                         lower_bound=0, **into)
    flags.DEFINE_integer("input_processes", 0, "JAX backend: decode training batches in this many worker processes "
                         "(0: threads of this process). Threads stop scaling at Python's GIL; on a GPU machine with many "
                         "cores, processes keep the GPU fed (docs/backends.md).", lower_bound=0, **into)
    flags.DEFINE_enum("strategy", "default", list(STRATEGIES), "TensorFlow backend: distribution: default (one "
                      "device), mirrored (all local GPUs), multi_worker (TF_CONFIG cluster), tpu.", **into)
    flags.DEFINE_integer("cpu_replicas", 0,
                         "Split the CPU into this many logical devices (0: leave it whole), so --strategy=mirrored "
                         "runs several replicas without GPUs: for trying distribution on a laptop.", lower_bound=0,
                         **into)
    flags.DEFINE_string("tpu_address", "", "TPU name or grpc:// address for --strategy=tpu.", **into)
    flags.DEFINE_bool("jit_compile", False,
                      "TensorFlow backend: compile each update's loss and gradients with XLA (the optimizer's "
                      "apply, which all-reduces across replicas, stays outside). Pays on GPUs; on CPUs XLA's "
                      "convolutions are slower than oneDNN's (docs/benchmarks.md). The JAX backend always compiles.",
                      **into)
    flags.DEFINE_enum("mixed_precision", "float32", list(precision.POLICIES),
                      "Compute dtype of the networks (weights, losses, the gradient penalty's norm and the saved models "
                      "stay float32): mixed_float16 for GPUs with tensor cores (with dynamic loss scaling), "
                      "mixed_bfloat16 for TPUs, recent GPUs and CPUs with AVX512-BF16/AMX; float32 elsewhere "
                      "(docs/benchmarks.md has this CPU's figures).", **into)
    flags.DEFINE_list("profile_steps", [], "TensorFlow backend: trace steps FIRST,LAST with the TensorFlow profiler "
                      "(e.g. 20,25: after the first steps' tracing) into <run>/logs (TensorBoard's Profile tab, with "
                      "pip install tensorboard-plugin-profile) and write <run>/logs/profile_summary.md, the kernel time "
                      "of each op type.", **into)
    flags.DEFINE_string("runs_root", "runs", "Folder that holds run directories.", **into)
    flags.DEFINE_string("run_name", "", "Run directory name prefix (default: the task name); a timestamp is "
                        "appended.", **into)
    flags.DEFINE_string("resume", "", "Continue the run in this run directory from its latest checkpoint.", **into)
    flags.DEFINE_bool("dry_run", False, "Print the resolved configuration and a summary of the data, then exit.", **into)
    flags.DEFINE_integer("batch_size", 32, "Global batch size, split evenly over replicas.", lower_bound=1, **into)
    flags.DEFINE_integer("train_steps", 1000, "Total optimisation steps of the run.", lower_bound=1, **into)
    flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.", lower_bound=0.0, **into)
    flags.DEFINE_integer("log_every", 50, "Steps between TensorBoard scalars.", lower_bound=1, **into)
    flags.DEFINE_integer("sample_every", 500, "Steps between sample grids (samples/ and TensorBoard).", lower_bound=1,
                         **into)
    flags.DEFINE_integer("eval_every", 1000, "Steps between evaluations on the held-out split.", lower_bound=1, **into)
    flags.DEFINE_integer("checkpoint_every", 500, "Steps between checkpoints.", lower_bound=1, **into)
    flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept in the run directory.", lower_bound=1, **into)
    flags.DEFINE_integer("num_samples", 16, "Held-out images shown in each sample grid.", lower_bound=1, **into)
    flags.DEFINE_integer("seed", 0, "Seed for weights and data order.", **into)
    flags.DEFINE_bool("progress_bar", True, "Show a progress bar.", **into)
    flags.DEFINE_enum("on_nan", "stop", ["stop", "skip"],
                      "A loss or gradient that is NaN or infinite: stop the run (exit code 3; the last good checkpoint "
                      "stays the latest), or skip that update (weights and optimizer moments unchanged) and count it, "
                      "stopping only after --max_consecutive_skips in a row. Never checkpointed either way.", **into)
    flags.DEFINE_integer("max_consecutive_skips", 20, "With --on_nan=skip: stop after this many skipped updates in a "
                         "row of one optimizer.", lower_bound=1, **into)
    flags.DEFINE_bool("deterministic", False,
                      "Deterministic kernels (TensorFlow: tf.config.experimental.enable_op_determinism; JAX on GPUs: "
                      "XLA's deterministic ops), so a run repeats bit for bit and a resumed run equals an "
                      "uninterrupted one. Under TensorFlow it also turns oneDNN's kernels off (scripts/train.py sets "
                      "TF_ENABLE_ONEDNN_OPTS=0 before TensorFlow loads): slower on CPU; an op without a deterministic "
                      "kernel is an error.", **into)
    flags.DEFINE_float("stop_after_minutes", 0.0,
                       "Stop training after this many minutes of wall time (0: no limit) and end as a finished run "
                       "does: checkpoint, samples, evaluation and exported models of the step reached. --resume "
                       "continues to --train_steps (the learning-rate schedule follows --train_steps, not the time). "
                       "For jobs with a time limit.", lower_bound=0.0, **into)
    flags.DEFINE_string("export_to", "",
                        "When training ends, export the run's models as SavedModels into this TF-Serving directory "
                        "(as scripts/export.py does) and print the commands that serve them.", **into)


def _task_kwargs(task_class, flag_values: flags.FlagValues = FLAGS) -> dict:
    """The recipe's hyperparameters from its flags, and the run seed."""
    return {**tasks.hyperparameters_from_flags(task_class, flag_values), "seed": flag_values["seed"].value}


def _data_kwargs(task_class, train_source) -> dict:
    """What a task may take from the training data itself, by constructor argument name."""
    parameters = inspect.signature(task_class.__init__).parameters
    kwargs = {}
    if "identities" in parameters:  # a face-recognition task's classes: the training split's identities
        kwargs["identities"] = tuple(int(i) for i in train_source.identities())
    if "data_features" in parameters:  # what each example holds (e.g. depth), for recipes that need more than images
        kwargs["data_features"] = tuple(train_source.features)
    return kwargs


def _check_batch_size(strategy, batch_size):
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ConfigError(f"--batch_size={batch_size} does not split evenly over {replicas} replicas.")


# Flags that mean something under one backend only, with the value that leaves them unused.
_TENSORFLOW_ONLY = {"strategy": "default", "cpu_replicas": 0, "tpu_address": "", "export_to": "",
                    "jit_compile": False, "profile_steps": []}
_JAX_ONLY = {"devices": 1, "input_processes": 0}


def _check_backend_flags():
    """The backend Keras runs on is the one asked for, and no flag of the other backend is set."""
    running = backend.name()
    if FLAGS.backend != running:
        raise ConfigError(f"--backend={FLAGS.backend}, but Keras was already imported with the {running} backend: "
                          f"set KERAS_BACKEND={FLAGS.backend} before importing keras (scripts/train.py does this "
                          "from --backend).")
    other_only = _TENSORFLOW_ONLY if running == "jax" else _JAX_ONLY
    for name, unused in other_only.items():
        if FLAGS[name].value != unused:
            hint = {"export_to": " (export the run's .keras files afterwards with scripts/export.py under TensorFlow)",
                    "jit_compile": " (the JAX trainer always compiles its updates)"}.get(name, "")
            raise ConfigError(f"--{name}={FLAGS[name].value} is a {'TensorFlow' if running == 'jax' else 'JAX'}-"
                              f"backend flag; it does nothing under --backend={running}{hint}.")


def _open_sources(data_config):
    """(train, held-out or None) sources of the backend's input pipeline."""
    if backend.name() == "jax":
        from legan_tf.data.numpy_input import open_numpy_source as open_source
    else:
        from legan_tf.data import open_source
    source = open_source(data_config)
    # Always through split(): TFRecord shards may carry a held-out split that prepare_data stored.
    train_source, eval_source = source.split(FLAGS.holdout_fraction, FLAGS.split_seed)
    if eval_source.num_examples == 0:
        logging.warning("No held-out data (--holdout_fraction=%s): the run reports training metrics only.",
                        FLAGS.holdout_fraction)
        eval_source = None
    return train_source, eval_source


def _make_task(task_class, train_source):
    """The recipe, built before the run directory exists, so a setting it refuses leaves nothing behind."""
    if FLAGS.on_nan == "skip" and FLAGS.mixed_precision == "mixed_float16":
        raise ConfigError("--on_nan=skip with --mixed_precision=mixed_float16: float16's loss scaling already skips "
                          "every update whose gradients overflow (and lowers the scale); a NaN loss then stops the "
                          "run. Use --on_nan=stop, or mixed_bfloat16, which needs no loss scaling.")
    optimizers.set_skip_non_finite(FLAGS.on_nan == "skip")
    # Before the task builds its networks: each layer takes the global policy when it is made.
    precision.set_policy(FLAGS.mixed_precision)
    return task_class(
        label_names=train_source.label_names,
        image_size=FLAGS.image_size,
        global_batch_size=FLAGS.batch_size,
        train_steps=FLAGS.train_steps,
        learning_rate=FLAGS.learning_rate,
        **_task_kwargs(task_class),
        **_data_kwargs(task_class, train_source),
    )


def _trainer_config() -> TrainerConfig:
    return TrainerConfig(
        train_steps=FLAGS.train_steps,
        log_every=FLAGS.log_every,
        sample_every=FLAGS.sample_every,
        eval_every=FLAGS.eval_every,
        checkpoint_every=FLAGS.checkpoint_every,
        keep_checkpoints=FLAGS.keep_checkpoints,
        num_samples=FLAGS.num_samples,
        seed=FLAGS.seed,
        progress_bar=FLAGS.progress_bar,
        stop_after_minutes=FLAGS.stop_after_minutes,
        on_nan=FLAGS.on_nan,
        max_consecutive_skips=FLAGS.max_consecutive_skips,
        profile_steps=_profile_steps(),
    )


def _profile_steps() -> tuple:
    if not FLAGS.profile_steps:
        return ()
    try:
        first, last = (int(value) for value in FLAGS.profile_steps)
    except ValueError:
        first = last = 0
    if not 1 <= first <= last:
        raise ConfigError(f"--profile_steps={','.join(FLAGS.profile_steps)}: give two steps FIRST,LAST with "
                          "1 <= FIRST <= LAST, e.g. --profile_steps=20,25.")
    return first, last


def _open_run_dir(train_source, chief=True, share=None) -> str:
    """The run directory: --resume's, or a new one. `share(path)` gives every worker of a cluster the
    chief's path: the chief alone creates the folder, which must lie on storage every worker sees."""
    if FLAGS.resume:
        run_dir = run_dirs.existing_run_dir(FLAGS.resume)
    elif share is not None:
        run_dir = share(run_dirs.new_run_dir(FLAGS.runs_root, FLAGS.run_name or FLAGS.task) if chief else "")
        if not chief and not os.path.isdir(run_dir):
            raise ConfigError(f"The chief's run directory {run_dir} is not visible from this worker: with "
                              "--strategy=multi_worker, --runs_root must be storage every worker sees (a shared "
                              "file system or a bucket), as docs/distributed.md says.")
    else:
        run_dir = run_dirs.new_run_dir(FLAGS.runs_root, FLAGS.run_name or FLAGS.task)
    if chief:
        run_dirs.write_flagfile(run_dir, run_dirs.project_flag_values(FLAGS))
        # The exported models take label names, not ids: keep them with the run, not only with the data.
        run_dirs.write_run_labels(run_dir, train_source.label_names)
    logging.info("Run directory: %s", run_dir)
    return run_dir


def _finished(run_dir, metrics):
    print(f"Finished: {run_dir}" + ("".join(f"\n  {name}: {value:.4f}" for name, value in metrics.items())), flush=True)


def run() -> dict:
    """Trains the task named by --task; returns the final held-out metrics."""
    _check_backend_flags()
    if backend.name() == "jax":
        return _run_jax()
    return _run_tensorflow()


def _dry_run(train_source, eval_source) -> dict:
    print("# Resolved configuration (a flagfile):")
    print(run_dirs.flagfile_text(run_dirs.project_flag_values(FLAGS)))
    print("# Training data")
    print(train_source.summary())
    if eval_source is not None:
        print("# Held-out data")
        print(eval_source.summary())
    return {}


def _run_jax() -> dict:
    from legan_tf.training.jax_trainer import JaxTrainer, data_parallel_devices

    task_class = tasks.get_task_class(FLAGS.task)
    train_source, eval_source = _open_sources(data_config_from_flags(FLAGS))
    if FLAGS.dry_run:
        return _dry_run(train_source, eval_source)
    if FLAGS.deterministic:
        # Read when JAX's backends start, on the first device query below. XLA on CPU is deterministic already.
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true").strip()
    keras.utils.set_random_seed(FLAGS.seed)
    devices = data_parallel_devices(FLAGS.devices)
    if FLAGS.batch_size % len(devices):
        raise ConfigError(f"--batch_size={FLAGS.batch_size} does not split evenly over {len(devices)} devices.")
    task = _make_task(task_class, train_source)
    run_dir = _open_run_dir(train_source)
    print(f"Run directory: {run_dir}\nBackend: jax, {len(devices)} {devices[0].platform} device(s), "
          f"global batch {FLAGS.batch_size}", flush=True)
    metrics = JaxTrainer(task, run_dir, train_source, eval_source, _trainer_config(), devices=devices,
                         input_processes=FLAGS.input_processes).run()
    _finished(run_dir, metrics)
    return metrics


def _run_tensorflow() -> dict:
    import tensorflow as tf

    from legan_tf import export
    from legan_tf.data import distribute
    from legan_tf.training.strategy import (broadcast_from_chief, create_strategy, is_chief, is_multi_worker,
                                            split_cpu_into_logical_devices)
    from legan_tf.training.trainer import Trainer

    if FLAGS.cpu_replicas:
        # Before anything touches a device: logical devices cannot be added once TF has initialised.
        split_cpu_into_logical_devices(FLAGS.cpu_replicas)
    task_class = tasks.get_task_class(FLAGS.task)
    train_source, eval_source = _open_sources(data_config_from_flags(FLAGS))

    if FLAGS.dry_run:
        return _dry_run(train_source, eval_source)

    if FLAGS.stop_after_minutes and FLAGS.strategy == "multi_worker":
        # Each worker's clock would stop it at a different step, and the others would wait for it forever.
        raise ConfigError("--stop_after_minutes cannot stop a multi_worker cluster: its workers must stop at the "
                          "same step. Set --train_steps instead.")
    backend.set_jit_compile(FLAGS.jit_compile)
    tf.keras.utils.set_random_seed(FLAGS.seed)
    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = create_strategy(FLAGS.strategy, FLAGS.tpu_address)
    _check_batch_size(strategy, FLAGS.batch_size)
    task = _make_task(task_class, train_source)
    share = (lambda path: broadcast_from_chief(strategy, path)) if is_multi_worker(strategy) else None
    run_dir = _open_run_dir(train_source, chief=is_chief(strategy), share=share)
    print(f"Run directory: {run_dir}\nStrategy: {FLAGS.strategy}, {strategy.num_replicas_in_sync} replica(s), "
          f"global batch {FLAGS.batch_size}", flush=True)
    trainer = Trainer(task, strategy, run_dir, train_source, eval_source, _trainer_config(), distribute_fn=distribute)
    metrics = trainer.run()
    _finished(run_dir, metrics)
    if FLAGS.export_to and is_chief(strategy):
        exported = export.export_run(run_dir, FLAGS.export_to)
        print(export.serving_commands(exported, FLAGS.export_to, run_dir), flush=True)
    return metrics
