"""Hyperparameters declared once: a dataclass per recipe, from which everything else derives.

A field made with `hparam(default, help, ...)` is at the same time
  - the command-line flag `--<recipe prefix><field>` (type, default, bounds and help from the field),
  - a constructor argument of the recipe (and, for the networks' fields, of its Keras model),
  - an entry of the model's `get_config()`, and through the flag a line of the run's flags.txt.
So a new hyperparameter is one line, and a default cannot differ between the flag and the code.
"""

from __future__ import annotations

import dataclasses
import typing

from absl import flags

from legan_tf.errors import ConfigError


def hparam(default, help: str, *, lower_bound=None, upper_bound=None, choices: typing.Sequence[str] | None = None):
    """A hyperparameter field: its default, its flag help and the bounds the flag enforces."""
    return dataclasses.field(default=default, metadata={
        "help": help, "lower_bound": lower_bound, "upper_bound": upper_bound,
        "choices": tuple(choices) if choices else None})


@dataclasses.dataclass(frozen=True)
class NoHyperparameters:
    """For a recipe without hyperparameters of its own."""


class _IntListParser(flags.ListParser):
    """Comma-separated integers, e.g. --identity_channels=48,96,192,128,128."""

    def parse(self, argument):
        items = super().parse(argument)
        try:
            return tuple(int(item) for item in items)
        except ValueError:
            raise ValueError(f"expected comma-separated integers, got {argument!r}") from None

    def flag_type(self):
        return "comma separated list of integers"


def _field_types(config_class) -> dict[str, object]:
    return typing.get_type_hints(config_class)


def _parser(field: dataclasses.Field, kind):
    meta = field.metadata
    if meta.get("choices"):
        return flags.EnumParser(list(meta["choices"])), flags.ArgumentSerializer()
    if kind is int:
        return flags.IntegerParser(meta.get("lower_bound"), meta.get("upper_bound")), flags.ArgumentSerializer()
    if kind is float:
        return flags.FloatParser(meta.get("lower_bound"), meta.get("upper_bound")), flags.ArgumentSerializer()
    if kind is str:
        return flags.ArgumentParser(), flags.ArgumentSerializer()
    if kind == tuple[int, ...]:
        return _IntListParser(), flags.CsvListSerializer(",")
    raise TypeError(f"hyperparameter {field.name}: no flag type for {kind!r}")


def define_flags(config_class, prefix: str, module_name: str, flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines `--<prefix><field>` for each field, listed under `module_name` in --help (the recipe's module)."""
    for field in dataclasses.fields(config_class):
        name = prefix + field.name
        if name in flag_values:
            continue
        kind = _field_types(config_class)[field.name]
        help_text = field.metadata.get("help")
        if help_text is None:
            raise TypeError(f"{config_class.__name__}.{field.name}: declare it with hparam(default, help).")
        if kind is bool:
            flags.DEFINE_flag(flags.BooleanFlag(name, field.default, help_text), flag_values, module_name=module_name)
            continue
        parser, serializer = _parser(field, kind)
        default = ",".join(map(str, field.default)) if kind == tuple[int, ...] else field.default
        flags.DEFINE(parser, name, default, help_text, flag_values, serializer, module_name=module_name)


def from_flags(config_class, prefix: str, flag_values: flags.FlagValues = flags.FLAGS,
               other_prefixes: typing.Sequence[str] = ()) -> dict[str, object]:
    """The field values set by `--<prefix><field>` flags, as constructor keyword arguments.

    A flag with the prefix that names no field is an error, not a silent default: set in a flagfile,
    it would otherwise train with the code's value while flags.txt records another. Flags of other
    recipes whose longer prefix starts with this one (`stargan_depth_` beside `stargan_`) are theirs.
    """
    names = {field.name for field in dataclasses.fields(config_class)}
    others = [other for other in other_prefixes if other != prefix and other.startswith(prefix)]
    prefixed = {name[len(prefix):]: name for name in flag_values
                if name.startswith(prefix) and not any(name.startswith(other) for other in others)}
    unused = sorted(argument for argument in prefixed if argument not in names)
    if unused:
        raise ConfigError(f"{', '.join('--' + prefixed[argument] for argument in unused)}: named like a flag of this "
                          f"recipe (prefix {prefix!r}), but it has no hyperparameter "
                          f"{', '.join(map(repr, unused))}; the flag would be ignored.")
    return {argument: flag_values[flag].value for argument, flag in prefixed.items()}


def create(config_class, owner: str, values: typing.Mapping[str, object], flag_prefix: str = ""):
    """`config_class(**values)`, with an unknown name or a bad value reported as a configuration error.

    With `flag_prefix`, a bad value is reported as the flag that would set it."""
    names = {field.name for field in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{owner}: no hyperparameter {', '.join(map(repr, unknown))}; it has "
                          f"{', '.join(sorted(names)) or 'none'}.")
    types = _field_types(config_class)
    return config_class(**{name: _convert(owner, name, types[name], value, flag_prefix)
                            for name, value in values.items()})


def _convert(owner, name, kind, value, flag_prefix):
    """Accepts what a caller naturally writes: a list or strings for an integer tuple (as the flag gives)."""
    if kind == tuple[int, ...]:
        try:
            return tuple(int(item) for item in value)
        except (TypeError, ValueError):
            where = f"--{flag_prefix}{name}={','.join(map(str, value))}" if flag_prefix else f"{owner}: {name}"
            raise ConfigError(f"{where}: expected comma-separated integers.") from None
    return value


def subset(config, config_class) -> dict[str, object]:
    """The values of `config` that `config_class` declares (e.g. the model's share of a recipe's)."""
    return {field.name: getattr(config, field.name) for field in dataclasses.fields(config_class)}
