"""Training recipes by name, discovered from this package.

Adding a recipe is one module in this folder plus one preset in configs/ (configs/<dataset>/<name>.flags):
a `Task` subclass decorated with `@register` (with its `Hyperparameters` dataclass) is found, its flags
are defined and `--task=<name>` trains it, with no list to edit anywhere else. See docs/architecture.md.
"""

import importlib
import pkgutil
import sys

from absl import flags

from legan_tf import hparams
from legan_tf.errors import ConfigError
from legan_tf.tasks.base import Task

_REGISTRY: dict[str, type[Task]] = {}
_NOT_RECIPES = {"base"}


def register(task_class: type[Task]) -> type[Task]:
    """Class decorator: makes a recipe trainable as --task=<task_class.name>."""
    if not task_class.name:
        raise TypeError(f"{task_class.__name__}: a registered recipe needs a `name`.")
    known = _REGISTRY.get(task_class.name)
    if known is not None and known.__qualname__ != task_class.__qualname__:
        raise TypeError(f"recipe name {task_class.name!r} is taken by {known.__module__}.{known.__qualname__}.")
    _REGISTRY[task_class.name] = task_class
    return task_class


def discover() -> None:
    """Imports every module of this package, which registers the recipes they define."""
    for module in pkgutil.iter_modules(__path__):
        if module.name not in _NOT_RECIPES:
            importlib.import_module(f"{__name__}.{module.name}")


def get_task_class(name: str) -> type[Task]:
    discover()
    if name not in _REGISTRY:
        raise ConfigError(f"Unknown task {name!r}; available: {', '.join(sorted(_REGISTRY))}.")
    return _REGISTRY[name]


def task_names() -> list[str]:
    discover()
    return sorted(_REGISTRY)


def task_classes() -> list[type[Task]]:
    return [_REGISTRY[name] for name in task_names()]


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Every recipe's `--<prefix><hyperparameter>` flags, listed under the recipe's module in --help."""
    for task_class in task_classes():
        hparams.define_flags(task_class.Hyperparameters, task_class.prefix(), task_class.__module__, flag_values)


def recipe_modules() -> list:
    """The modules that define recipes (for absl's --help key flags)."""
    return [sys.modules[task_class.__module__] for task_class in task_classes()]


def hyperparameters_from_flags(task_class: type[Task], flag_values: flags.FlagValues = flags.FLAGS) -> dict:
    """The recipe's hyperparameters as set by its flags (an unknown prefixed flag is a ConfigError)."""
    prefixes = [other.prefix() for other in task_classes()]
    return hparams.from_flags(task_class.Hyperparameters, task_class.prefix(), flag_values, prefixes)
