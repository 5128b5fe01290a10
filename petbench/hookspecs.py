"""The hooks a petbench plugin can implement.

Registration hooks receive a ``register`` callback, so the host records which plugin and
distribution supplied each name and refuses duplicates. Pluggy lets an implementation accept
a subset of a spec's arguments, which is how these specs can grow without breaking plugins.
"""
import pluggy

hookspec = pluggy.HookspecMarker("petbench")
hookimpl = pluggy.HookimplMarker("petbench")


@hookspec
def register_datasets(register):
    """Register datasets: call ``register(DatasetClass)`` once per dataset.

    ``DatasetClass`` is a subclass of :class:`petbench.Dataset` (or a lazy ``"module:Class"``
    string) with a unique ``name``.
    """


@hookspec
def register_methods(register):
    """Register methods: call ``register(MethodClass)`` once per method.

    ``MethodClass`` is a subclass of :class:`petbench.Method` (or a lazy ``"module:Class"``
    string) with a unique ``name``.
    """


@hookspec
def register_metrics(register):
    """Register metrics: call ``register(metric)`` with a :class:`petbench.Metric`."""


@hookspec
def register_commands(cli):
    """Add commands to the ``petbench`` command line; ``cli`` is the Typer application."""


@hookspec
def run_finished(record):
    """Called after a run's record is written, finished or failed.

    ``record`` is a :class:`petbench.results.RunRecord`: its ``status``, ``config``,
    ``summary`` (metric -> mean/std) and ``path``. Use it to log to an experiment tracker.
    """


@hookspec
def epoch_finished(record, stage, epoch, losses, validation):
    """Called after each trained epoch (not for epochs a resumed run had already trained).

    ``record`` is the run's :class:`petbench.results.RunRecord` (status ``running``); ``stage`` the
    stage's name; ``epoch`` its number within the stage, from 1; ``losses`` the epoch's mean of each
    loss the stage's step returned; ``validation`` ``{metric: score}`` when the host scored the
    validation subjects at this epoch, else None. The same entries are in the run's
    ``history.jsonl``. An implementation that raises is named in one line; the run goes on.
    """
