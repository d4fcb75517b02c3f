"""Errors a user can fix. Entry points print their message and exit 1 instead of a traceback."""


class ConfigError(ValueError):
    """A flag, a file or a checkpoint does not fit the run being started; the message says what and where."""
