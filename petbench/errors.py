"""Errors that the CLI turns into one clear line (exit code 2 for a user's mistake, 1 for a failed run)."""
from __future__ import annotations

import traceback as _traceback
from contextlib import contextmanager


class UserError(Exception):
    """A mistake the user can fix: a bad name, a missing file, corrupt data, a bad value.

    The message names the thing and what to do; the CLI prints it without a traceback.
    """


class PluginError(Exception):
    """A plugin broke (at import, at registration or during a run)."""


class TrainingDiverged(Exception):
    """A loss became NaN or Inf; the run is recorded as failed."""


class PluginRunError(PluginError):
    """A plugin's own code raised during a run (not a :class:`UserError` and not a divergence).

    It names the role (``method``, ``dataset`` or ``metric``), the registered name, the plugin
    and distribution that supplied it and the phase of the run; the original exception is its
    ``__cause__`` and its formatted traceback is kept in :attr:`traceback`. The run is recorded
    as failed; the CLI prints :meth:`line` and exits with code 1.
    """

    def __init__(self, role: str, name: str, plugin: str, dist: str, phase: str, error: BaseException):
        self.role, self.name, self.plugin, self.dist, self.phase = role, name, plugin, dist, phase
        self.exception = f"{type(error).__name__}: {error}"
        self.traceback = "".join(_traceback.format_exception(type(error), error, error.__traceback__))
        super().__init__(self.line())

    def line(self) -> str:
        return (f"{self.role} {self.name!r} from plugin {self.plugin!r} ({self.dist or 'in-process'}) "
                f"raised during {self.phase}: {self.exception}")

    def as_dict(self) -> dict:
        return {"role": self.role, "name": self.name, "plugin": self.plugin, "dist": self.dist,
                "phase": self.phase, "exception": self.exception, "traceback": self.traceback}


#: What to do about a file-system error, by errno name: each is the user's to fix, never a plugin's failure.
FILE_SYSTEM_ADVICE = {
    "ENOSPC": "no space left on the device; free some space (or give --results / PETBENCH_CACHE on another "
              "disk) and run the same command again: an interrupted run resumes",
    "EDQUOT": "the disk quota is exceeded; free some space and run the same command again: an interrupted "
              "run resumes",
    "ENAMETOOLONG": "the name is too long for the file system; give a shorter path",
    "EACCES": "permission denied; give a path you can write in, or fix its permissions",
    "EPERM": "the operation is not permitted there; give a path you can write in",
    "EROFS": "the file system is read-only; give a path on a writable disk",
    "ENOTDIR": "a part of the path is a file where a folder should be; remove or rename it",
    "EISDIR": "a folder is where a file should be; remove or rename it",
    "EEXIST": "something is in the way; remove or rename it",
    "ENOTEMPTY": "a folder is in the way; remove or rename it",
    "ELOOP": "a loop of symbolic links; remove the link",
    "EMFILE": "too many open files; raise the limit (ulimit -n)",
    "EIO": "an input/output error of the disk; check the disk",
}


def file_system_error(exc: BaseException) -> "UserError | None":
    """A file-system error as a :class:`UserError` naming the path and what to do, or None when
    ``exc`` is no such error."""
    import errno

    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    name = errno.errorcode.get(exc.errno, "")
    advice = FILE_SYSTEM_ADVICE.get(name)
    if advice is None:
        return None
    where = exc.filename if exc.filename is not None else "a file petbench writes"
    return UserError(f"{where}: {advice}")


@contextmanager
def plugin_code(role: str, entry, phase: str):
    """Attribute an exception raised in a plugin's code to that plugin: anything but a
    :class:`UserError`, a :class:`PluginError` or a divergence becomes a :class:`PluginRunError`
    naming the role, the registry ``entry``'s name, plugin and distribution, and the phase (the
    original is its cause)."""
    try:
        yield
    except (UserError, PluginError, TrainingDiverged):
        raise
    except OSError as exc:
        if file_system_error(exc) is not None:  # a full disk is not the plugin's failure
            raise
        raise PluginRunError(role, entry.name, entry.plugin, entry.dist, phase, exc) from exc
    except Exception as exc:
        raise PluginRunError(role, entry.name, entry.plugin, entry.dist, phase, exc) from exc
