"""Training recipes by name. Adding a recipe means one module here plus one configs/*.flags file."""

from legan_tf.tasks.base import Task

_REGISTRY: dict[str, type[Task]] = {}


def register(task_class: type[Task]) -> type[Task]:
    _REGISTRY[task_class.name] = task_class
    return task_class


def get_task_class(name: str) -> type[Task]:
    if name not in _REGISTRY:
        raise ValueError(f"Unknown task {name!r}; available: {', '.join(sorted(_REGISTRY))}.")
    return _REGISTRY[name]


def task_names() -> list[str]:
    return sorted(_REGISTRY)


# Importing the recipes registers them.
from legan_tf.tasks import classifier, identity, legan, quality, stargan  # noqa: E402,F401
