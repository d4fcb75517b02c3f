"""Settings declared once: a frozen dataclass of `hparam` fields, from which everything else derives.

A field made with `hparam(default, help, ...)` is at the same time
  - the command-line flag `--<prefix><field>` (type, default, bounds, choices and help from the field),
  - a constructor argument (of a recipe and, for the networks' fields, of its Keras model; of the
    data configuration; of the training settings),
  - an entry of the model's `get_config()`, and through the flag a line of the run's flags.txt.
So a new setting is one line, and a default cannot differ between the flag and the code.

Field types: bool, int, float, str, tuple[int, ...] and tuple[str, ...] (comma-separated flags), and
Optional[...] of those (the flag may be left unset: None). A field may be required (`REQUIRED`: no
default; its flag's default is None), take its flag's default from the environment (`env`), or give
its flag another default than the field's (`flag_default`, e.g. None for "derived when not given").
`metadata` keys that only some owners read (which backend a training flag belongs to, whether it is
recorded in flags.txt) are free-form.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing

from absl import flags

from legan_tf.errors import ConfigError


class _Required:
    def __repr__(self):
        return "REQUIRED"


# The default of a field that has none: the caller must give a value (its flag defaults to None).
REQUIRED = _Required()
_SAME = object()  # flag_default: the field's own default


def hparam(default, help: str, *, lower_bound=None, upper_bound=None, choices: typing.Sequence[str] | None = None,
           flag_default=_SAME, env: str | None = None, **metadata):
    """A setting's field: its default (or REQUIRED), its flag's help and the bounds or choices the flag
    enforces. `env`: the flag's default is this environment variable when it holds one of `choices`.
    Other keyword arguments are kept in the field's metadata for the owner of the settings to read."""
    if isinstance(default, (list, dict, set)):
        raise TypeError(f"hparam default {default!r}: use an immutable value (a tuple for a list).")
    metadata = {"help": help, "lower_bound": lower_bound, "upper_bound": upper_bound,
                "choices": tuple(choices) if choices else None, "flag_default": flag_default, "env": env, **metadata}
    if default is REQUIRED:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


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


INT_TUPLE, STR_TUPLE = tuple[int, ...], tuple[str, ...]


def _kind(hint):
    """A field's type with Optional removed and typing.Tuple spelt as tuple: bool, int, float, str,
    INT_TUPLE or STR_TUPLE (anything else is returned as it is)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(hint) if option is not type(None)]
        if len(options) == 1:
            return _kind(options[0])
    if origin is tuple:
        arguments = typing.get_args(hint)
        if len(arguments) == 2 and arguments[1] is Ellipsis and arguments[0] in (int, str):
            return tuple[arguments[0], ...]
    return hint


def _field_kinds(config_class) -> dict[str, object]:
    return {name: _kind(hint) for name, hint in typing.get_type_hints(config_class).items()}


def _parser(field: dataclasses.Field, kind):
    meta = field.metadata
    if kind is int:
        return flags.IntegerParser(meta.get("lower_bound"), meta.get("upper_bound")), flags.ArgumentSerializer()
    if kind is float:
        return flags.FloatParser(meta.get("lower_bound"), meta.get("upper_bound")), flags.ArgumentSerializer()
    if kind is str:
        return flags.ArgumentParser(), flags.ArgumentSerializer()
    if kind == INT_TUPLE:
        return _IntListParser(), flags.CsvListSerializer(",")
    if kind == STR_TUPLE:
        return flags.ListParser(), flags.CsvListSerializer(",")
    raise TypeError(f"setting {field.name}: no flag type for {kind!r}")


def is_required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def flag_default(field: dataclasses.Field):
    """The default of the field's flag: `flag_default`, else the environment's value (`env`) when it is
    one of the choices, else the field's default (None for a required field)."""
    meta = field.metadata
    if meta.get("flag_default", _SAME) is not _SAME:
        return meta["flag_default"]
    if meta.get("env"):
        value = os.environ.get(meta["env"], "")
        if value and (not meta.get("choices") or value in meta["choices"]):
            return value
    return None if is_required(field) else field.default


def define_flags(config_class, prefix: str, module_name: str, flag_values: flags.FlagValues = flags.FLAGS,
                 help_overrides: typing.Mapping[str, str] | None = None) -> None:
    """Defines `--<prefix><field>` for each field, listed under `module_name` in --help (the owner's module).
    `help_overrides`: {field: help} for help texts only the caller can write (e.g. a list of recipes)."""
    kinds = _field_kinds(config_class)
    for field in dataclasses.fields(config_class):
        name = prefix + field.name
        if name in flag_values:
            continue
        kind = kinds[field.name]
        help_text = (help_overrides or {}).get(field.name, field.metadata.get("help"))
        if help_text is None:
            raise TypeError(f"{config_class.__name__}.{field.name}: declare it with hparam(default, help).")
        default = flag_default(field)
        if kind is bool:
            flags.DEFINE_flag(flags.BooleanFlag(name, default, help_text), flag_values, module_name=module_name)
            continue
        if field.metadata.get("choices"):  # an enum flag: --help shows <a|b|c>
            flags.DEFINE_flag(flags.EnumFlag(name, default, help_text, list(field.metadata["choices"])), flag_values,
                              module_name=module_name)
            continue
        parser, serializer = _parser(field, kind)
        if default is not None and kind == INT_TUPLE:
            default = ",".join(map(str, default))
        elif default is not None and kind == STR_TUPLE:
            default = list(default)
        flags.DEFINE(parser, name, default, help_text, flag_values, serializer, module_name=module_name)


def flag_names(config_class, prefix: str = "") -> list[str]:
    return [prefix + field.name for field in dataclasses.fields(config_class)]


def read_flags(config_class, prefix: str = "", flag_values: flags.FlagValues = flags.FLAGS) -> dict[str, object]:
    """{field: value} of every field's flag `--<prefix><field>` (lists as tuples; None where unset)."""
    kinds = _field_kinds(config_class)
    values = {}
    for field in dataclasses.fields(config_class):
        value = flag_values[prefix + field.name].value
        if value is not None and kinds[field.name] in (INT_TUPLE, STR_TUPLE):
            value = tuple(value)
        values[field.name] = value
    return values


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
    kinds = _field_kinds(config_class)
    return config_class(**{name: _convert(owner, name, kinds[name], value, flag_prefix)
                            for name, value in values.items()})


def _convert(owner, name, kind, value, flag_prefix):
    """Accepts what a caller naturally writes: a list or strings for a tuple (as the flag gives)."""
    if kind == INT_TUPLE:
        try:
            return tuple(int(item) for item in value)
        except (TypeError, ValueError):
            where = f"--{flag_prefix}{name}={','.join(map(str, value))}" if flag_prefix else f"{owner}: {name}"
            raise ConfigError(f"{where}: expected comma-separated integers.") from None
    if kind == STR_TUPLE and value is not None and not isinstance(value, str):
        return tuple(str(item) for item in value)
    return value


def subset(config, config_class) -> dict[str, object]:
    """The values of `config` that `config_class` declares (e.g. the model's share of a recipe's)."""
    return {field.name: getattr(config, field.name) for field in dataclasses.fields(config_class)}
