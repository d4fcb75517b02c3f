"""The GAN generator an evaluation judges, and the settings of the run that trained it.

`resolve_run(run_dir, generator_path, settings, kind)` asks the run directory (`legan_tf.runs.RunDir`)
for the run's settings and its generator.keras (or loads `generator_path`), and lets the caller
override the settings a generator given without its run needs (RUN_SETTINGS). `recipe_check` names
the learning-check set the run's recipe holds its generators to.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Mapping, Optional, Tuple

from legan_tf.data.config import MULTIPIE_EXPRESSIONS, MULTIPIE_NUM_LIGHTINGS, numbered_names
from legan_tf.errors import ConfigError
from legan_tf.evaluation.translation_metrics import CHECK_SETS, DEFAULT_CHECK
from legan_tf.runs import RunDir, RunSettings, load_generator, model_file

# What an evaluation needs of a run's settings (from its flags.txt, or the command line); `task` picks
# the default check.
RUN_SETTINGS = ("task", "image_size", "expression_names", "lighting_names", "num_lightings", "data_path")


def recipe_check(task: Optional[str]) -> str:
    """The check set a run's recipe holds its generators to: its task class's `translation_check`.

    A run with no --task (or a recipe that names no check) gets DEFAULT_CHECK.
    """
    if not task:
        return DEFAULT_CHECK
    from legan_tf import tasks  # TensorFlow, and only needed here

    try:
        task_class = tasks.get_task_class(task)
    except ValueError as error:
        raise ConfigError(f"{error} The run's recipe is unknown here: pass --kind.") from None
    check = getattr(task_class, "translation_check", DEFAULT_CHECK)
    if check not in CHECK_SETS:
        raise ConfigError(f"--task={task} names the learning check {check!r}; known: {', '.join(CHECK_SETS)}.")
    return check


def infer_attributes(num_labels: int, class_counts: Mapping[str, int]) -> Tuple[str, ...]:
    """Which attributes a generator's label vector covers, from its length (expression first)."""
    candidates = [("expression", "lighting"), ("expression",), ("lighting",)]
    matching = [names for names in candidates if sum(class_counts[name] for name in names) == num_labels]
    if len(matching) != 1:
        why = "none" if not matching else "several"
        raise ConfigError(
            f"the generator takes {num_labels} labels; {why} of expression ({class_counts['expression']}), "
            f"lighting ({class_counts['lighting']}) or both fit: pass --attributes.")
    return matching[0]


@dataclasses.dataclass
class RunUnderTest:
    """A GAN generator to evaluate and the settings of the run that trained it."""

    label: str
    run_dir: Optional[str]
    generator_path: str
    generator: Any
    settings: Dict[str, object]      # RUN_SETTINGS from flags.txt, overridden by the caller
    flag_lines: Dict[str, str]       # every line of flags.txt, raw (RunSettings.lines); {} without a run
    kind: str                        # the learning-check set (translation_metrics.CHECK_SETS)
    run_settings: Optional[RunSettings] = None  # the run's settings; None for a generator given alone

    @property
    def task(self) -> Optional[str]:
        return self.settings.get("task")

    @property
    def image_size(self) -> int:
        return int(self.generator.image_size)

    @property
    def expression_names(self) -> Tuple[str, ...]:
        return tuple(self.settings.get("expression_names") or MULTIPIE_EXPRESSIONS)

    @property
    def lighting_names(self) -> Tuple[str, ...]:
        if self.settings.get("lighting_names"):
            return tuple(self.settings["lighting_names"])
        return numbered_names(int(self.settings.get("num_lightings") or MULTIPIE_NUM_LIGHTINGS))

    def attributes(self, class_counts: Mapping[str, int]) -> Tuple[str, ...]:
        return infer_attributes(self.generator.num_labels, class_counts)

    def data_config(self):
        """The DataConfig the run trained on (None without a run directory, or when flags.txt names no data)."""
        return self.run_settings.data_config() if self.run_settings is not None else None

    def recipe_flag(self, field: str) -> Tuple[str, str]:
        """(flag name, raw value) of the run's recipe's own `field` (e.g. legan_quality_model); ("", "") without
        a recipe, and the value "" when flags.txt has no such line."""
        if not self.task:
            return "", ""
        name = f"{self.task}_{field}"
        return name, self.flag_lines.get(name, "")


def resolve_run(run_dir: Optional[str] = None, generator_path: Optional[str] = None,
                settings: Optional[Mapping[str, object]] = None, kind: Optional[str] = None,
                label: Optional[str] = None) -> RunUnderTest:
    """Reads a run's settings and loads its generator (or `generator_path`); ConfigErrors say what is wrong."""
    if kind is not None and kind not in CHECK_SETS:
        raise ConfigError(f"--kind={kind}: expected one of {', '.join(CHECK_SETS)}.")
    if not run_dir and not generator_path:
        raise ConfigError("give --run_dir=<a GAN run directory> or --generator=<generator.keras>.")
    run = RunDir.open(run_dir) if run_dir else None
    run_settings = run.settings() if run else None
    resolved = ({name: value for name, value in run_settings.given().items() if name in RUN_SETTINGS}
                if run_settings else {})
    resolved.update({name: value for name, value in (settings or {}).items() if value is not None})
    kind = kind or recipe_check(resolved.get("task"))
    if not generator_path:
        if not run.has_model("generator"):
            raise ConfigError(f"--run_dir={run_dir}: it has no {model_file('generator')} (is the GAN run finished?); "
                              "or pass --generator=<file.keras>.")
        generator_path = run.model_path("generator")
    generator = load_generator(generator_path, "--generator")
    if resolved.get("image_size") not in (None, generator.image_size):
        raise ConfigError(f"the generator works on {generator.image_size} px images but the flags say "
                          f"--image_size={resolved['image_size']}.")
    if not label:
        label = run.name if run else os.path.basename(generator_path)
    return RunUnderTest(label, run_dir, generator_path, generator, resolved,
                        dict(run_settings.lines) if run_settings else {}, kind, run_settings)
