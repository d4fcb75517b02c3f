"""Errors a user can fix. Entry points print their message and exit 1 instead of a traceback."""


class ConfigError(ValueError):
    """A flag, a file or a checkpoint does not fit the run being started; the message says what and where."""


class RunStopped(Exception):
    """Training stopped before --train_steps, on purpose or on a fault it caught; the run directory keeps
    its last good checkpoint, so `--resume` continues. Entry points print the message and exit with
    `exit_code` (distinct per cause, so schedulers and scripts can tell them apart)."""

    exit_code = 1


class NonFiniteLoss(RunStopped):
    """A loss or a weight became NaN or infinite; nothing non-finite was saved."""

    exit_code = 3


class Interrupted(RunStopped):
    """SIGTERM or SIGINT: the step in progress finished and a checkpoint of it was written. 75 is
    EX_TEMPFAIL (sysexits.h), "try again later": a scheduler can requeue the job with --resume."""

    exit_code = 75


class CannotWrite(RunStopped):
    """The run directory cannot take a checkpoint (disk full, file-size limit, read-only, gone): the
    checkpoint being written is not registered, the previous one stays the latest. 74 is EX_IOERR."""

    exit_code = 74
