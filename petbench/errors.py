"""Errors that the CLI turns into one clear line and exit code 2."""


class UserError(Exception):
    """A mistake the user can fix: a bad name, a missing file, corrupt data, a bad value.

    The message names the thing and what to do; the CLI prints it without a traceback.
    """


class PluginError(Exception):
    """A plugin broke (at import, at registration or during a run)."""


class TrainingDiverged(Exception):
    """A loss became NaN or Inf; the run is recorded as failed."""
