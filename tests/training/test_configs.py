"""Every training preset in configs/ parses with scripts/train.py's flags and gives its recipe valid settings.

A misspelt flag, a value out of its bounds or a hyperparameter the recipe does not have would
otherwise surface only when someone starts that preset; the paper presets need data no test has.
"""

import glob
import os
import re

import pytest
from absl import flags

from legan_tf import tasks
from legan_tf.training import train_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, "configs")
# The face-lab presets are make_synthetic.py's flags, not training's; the real datasets' presets are
# prepare_data.py's (tests/data/test_real_layouts.py runs them). Paths under configs/.
LAB_PRESETS = {"lab/face_lab.flags", "lab/face_lab_32.flags", "lab/face_lab_identities.flags",
               "lab/face_lab_rgbd_32.flags", "lab/quality_lab_data.flags"}
DATA_PRESETS = {"fer2013/fer2013_data.flags", "ckplus/ckplus_data.flags", "celeba/celeba_data.flags",
                "celeba/celeba_smiling_data.flags"}
# Every preset of configs/, in its dataset's folder (configs/README.md, the index, says what each folder holds).
ALL_PRESETS = sorted(glob.glob(os.path.join(CONFIGS, "**", "*.flags"), recursive=True))
PRESETS = [path for path in ALL_PRESETS if os.path.relpath(path, CONFIGS) not in LAB_PRESETS | DATA_PRESETS]


def test_every_preset_is_either_a_training_a_lab_or_a_data_preset():
    assert len(PRESETS) + len(LAB_PRESETS) + len(DATA_PRESETS) == len(ALL_PRESETS)
    assert len(PRESETS) >= 20


def test_every_preset_sits_in_one_dataset_folder_under_a_name_of_its_own():
    """A preset is configs/<folder>/<name>.flags, and no two folders hold the same name."""
    relative = [os.path.relpath(path, CONFIGS) for path in ALL_PRESETS]
    assert [path for path in relative if path.count(os.sep) != 1] == []
    names = [os.path.basename(path) for path in relative]
    assert sorted(name for name in set(names) if names.count(name) > 1) == []


def test_the_index_lists_every_preset_and_no_other():
    """configs/README.md has a row per preset, by its path under configs/."""
    with open(os.path.join(CONFIGS, "README.md"), encoding="utf-8") as handle:
        listed = set(re.findall(r"\b([a-z0-9_]+/[a-z0-9_.]+\.flags)\b", handle.read()))
    assert listed == {os.path.relpath(path, CONFIGS).replace(os.sep, "/") for path in ALL_PRESETS}


@pytest.mark.parametrize("path", PRESETS, ids=lambda path: os.path.relpath(path, CONFIGS))
def test_training_preset_parses_and_its_recipe_accepts_the_values(path, monkeypatch):
    monkeypatch.chdir(REPO)  # presets name other presets relative to the repository root
    flag_values = flags.FlagValues()
    train_lib.define_flags(flag_values)
    flag_values(["train.py", f"--flagfile={path}"])
    task_class = tasks.get_task_class(flag_values.task)
    # Only its own recipe's flags: another recipe's would be ignored (and at a value of its own, refused).
    assert [flag.name for flag, _ in train_lib.other_recipes_flags(task_class, flag_values)] == []
    train_lib.training_settings(flag_values)  # the training settings fit together
    hyperparameters = tasks.hyperparameters_from_flags(task_class, flag_values)
    # The recipe's dataclass takes them all, with its own checks (choices, bounds) passed.
    task_class.Hyperparameters(**hyperparameters)
