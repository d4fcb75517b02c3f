"""Run directories: what one training run leaves behind, written and read in one place (`run_dir`), and the
training settings a run is made with (`settings`)."""

from legan_tf.runs.run_dir import (  # noqa: F401
    CHECKPOINTS_DIR, EVALUATION_DIR, FLAGS_FILE, LABELS_FILE, LOGS_DIR, METRICS_FILE, METRICS_LOG_FILE, MODEL_ROLES,
    SAMPLES_DIR, SCALARS_LOG_FILE, RunDir, RunSettings, flagfile_text, labels_beside, load_attribute_classifier,
    load_generator, load_label_generator, load_model, model_file, project_flag_values, read_label_names,
    write_label_names)
from legan_tf.runs.settings import TrainingSettings  # noqa: F401
