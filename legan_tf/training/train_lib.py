"""What `scripts/train.py` does: flags -> data -> task -> trainer, in a run directory."""

import inspect

from absl import flags, logging

from legan_tf import export, tasks
from legan_tf.data import data_config_from_flags, define_data_flags, distribute, open_source
from legan_tf.errors import ConfigError
from legan_tf.training import run_dir as run_dirs
from legan_tf.training.strategy import STRATEGIES, create_strategy, is_chief, split_cpu_into_logical_devices
from legan_tf.training.trainer import Trainer, TrainerConfig

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Every flag of the training entry point; safe to call more than once."""
    if "task" in flag_values:
        return
    define_data_flags(flag_values)
    tasks.define_flags(flag_values)
    into = {"flag_values": flag_values}
    flags.DEFINE_string("task", "classifier", f"Recipe to train: {', '.join(tasks.task_names())}.", **into)
    flags.DEFINE_enum("strategy", "default", list(STRATEGIES), "Distribution: default (one device), mirrored (all "
                      "local GPUs), multi_worker (TF_CONFIG cluster), tpu.", **into)
    flags.DEFINE_integer("cpu_replicas", 0,
                         "Split the CPU into this many logical devices (0: leave it whole), so --strategy=mirrored "
                         "runs several replicas without GPUs: for trying distribution on a laptop.", lower_bound=0,
                         **into)
    flags.DEFINE_string("tpu_address", "", "TPU name or grpc:// address for --strategy=tpu.", **into)
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


def run() -> dict:
    """Trains the task named by --task; returns the final held-out metrics."""
    import tensorflow as tf

    if FLAGS.cpu_replicas:
        # Before anything touches a device: logical devices cannot be added once TF has initialised.
        split_cpu_into_logical_devices(FLAGS.cpu_replicas)
    task_class = tasks.get_task_class(FLAGS.task)
    data_config = data_config_from_flags(FLAGS)
    source = open_source(data_config)
    # Always through split(): TFRecord shards may carry a held-out split that prepare_data stored.
    train_source, eval_source = source.split(FLAGS.holdout_fraction, FLAGS.split_seed)
    if eval_source.num_examples == 0:
        logging.warning("No held-out data (--holdout_fraction=%s): the run reports training metrics only.",
                        FLAGS.holdout_fraction)
        eval_source = None

    if FLAGS.dry_run:
        print("# Resolved configuration (a flagfile):")
        print(run_dirs.flagfile_text(run_dirs.project_flag_values(FLAGS)))
        print("# Training data")
        print(train_source.summary())
        if eval_source is not None:
            print("# Held-out data")
            print(eval_source.summary())
        return {}

    tf.keras.utils.set_random_seed(FLAGS.seed)
    strategy = create_strategy(FLAGS.strategy, FLAGS.tpu_address)
    _check_batch_size(strategy, FLAGS.batch_size)
    # Before the run directory exists, so a setting the task refuses leaves nothing behind.
    task = task_class(
        label_names=train_source.label_names,
        image_size=FLAGS.image_size,
        global_batch_size=FLAGS.batch_size,
        train_steps=FLAGS.train_steps,
        learning_rate=FLAGS.learning_rate,
        **_task_kwargs(task_class),
        **_data_kwargs(task_class, train_source),
    )
    if FLAGS.resume:
        run_dir = run_dirs.existing_run_dir(FLAGS.resume)
    else:
        run_dir = run_dirs.new_run_dir(FLAGS.runs_root, FLAGS.run_name or FLAGS.task)
    if is_chief(strategy):
        run_dirs.write_flagfile(run_dir, run_dirs.project_flag_values(FLAGS))
        # The exported models take label names, not ids: keep them with the run, not only with the data.
        export.write_run_labels(run_dir, train_source.label_names)
    logging.info("Run directory: %s", run_dir)
    print(f"Run directory: {run_dir}\nStrategy: {FLAGS.strategy}, {strategy.num_replicas_in_sync} replica(s), "
          f"global batch {FLAGS.batch_size}", flush=True)

    config = TrainerConfig(
        train_steps=FLAGS.train_steps,
        log_every=FLAGS.log_every,
        sample_every=FLAGS.sample_every,
        eval_every=FLAGS.eval_every,
        checkpoint_every=FLAGS.checkpoint_every,
        keep_checkpoints=FLAGS.keep_checkpoints,
        num_samples=FLAGS.num_samples,
        seed=FLAGS.seed,
        progress_bar=FLAGS.progress_bar,
    )
    trainer = Trainer(task, strategy, run_dir, train_source, eval_source, config, distribute_fn=distribute)
    metrics = trainer.run()
    print(f"Finished: {run_dir}" + ("".join(f"\n  {name}: {value:.4f}" for name, value in metrics.items())), flush=True)
    if FLAGS.export_to and is_chief(strategy):
        exported = export.export_run(run_dir, FLAGS.export_to)
        print(export.serving_commands(exported, FLAGS.export_to, run_dir), flush=True)
    return metrics
