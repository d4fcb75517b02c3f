"""absl flags for the data layer and the DataConfig they build, both derived from DataConfig's fields."""

from __future__ import annotations

import dataclasses

from absl import flags

from legan_tf import hparams
from legan_tf.data.config import MULTIPIE_NUM_LIGHTINGS, DataConfig, numbered_names
from legan_tf.data.errors import DataError

# The one data flag that is not a DataConfig field: it names the lighting classes when
# --lighting_names does not.
NUM_LIGHTINGS = "num_lightings"


def define_data_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the data flags; calling it again (another module also needs them) is a no-op."""
    if "data_format" in flag_values:
        return
    hparams.define_flags(DataConfig, "", __name__, flag_values)
    flags.DEFINE_integer(
        NUM_LIGHTINGS, MULTIPIE_NUM_LIGHTINGS,
        "Number of lighting classes, named 00..NN; ignored when --lighting_names is given. "
        "Default: Multi-PIE's 20 flashes.", flag_values=flag_values, module_name=__name__)


def data_flag_names() -> list[str]:
    """Every data flag, by name."""
    return [*hparams.flag_names(DataConfig), NUM_LIGHTINGS]


def data_flag_values(flag_values: flags.FlagValues = flags.FLAGS) -> dict[str, object]:
    """{flag: value} of every data flag as parsed (for a run's flags.txt)."""
    return {name: flag_values[name].value for name in data_flag_names()}


def data_config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> DataConfig:
    """Builds (and so validates) a DataConfig from parsed flags; raises DataError when unusable."""
    values = hparams.read_flags(DataConfig, "", flag_values)
    for field in dataclasses.fields(DataConfig):
        if hparams.is_required(field) and values[field.name] is None:
            raise DataError(f"--{field.name} is required")
    if not values["lighting_names"]:
        values["lighting_names"] = numbered_names(flag_values[NUM_LIGHTINGS].value)
    return DataConfig(**values)
