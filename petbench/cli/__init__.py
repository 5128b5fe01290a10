"""The ``petbench`` command line (Typer + rich).

:func:`create_app` builds a fresh application for a plugin host (tests pass an isolated one);
:func:`main` is the console script. A user's mistake becomes one line on stderr and exit code 2.
"""
from __future__ import annotations

import logging
import traceback

import typer
from typer.core import TyperGroup

from ..engine.allocator import tune_allocator
from ..errors import PluginError, PluginRunError, TrainingDiverged, UserError, file_system_error
from ..plugins import PluginHost, env_flag, get_plugin_manager, set_host


class PetbenchGroup(TyperGroup):
    """Turns the errors a user can act on into one clear line, without a traceback
    (``--traceback`` or ``PETBENCH_TRACEBACK=1`` shows it first)."""

    def invoke(self, ctx):
        try:
            refuse_empty_paths([*getattr(ctx, "protected_args", []), *ctx.args])
            return super().invoke(ctx)
        except PluginRunError as exc:  # a plugin's code raised during a run: the run is recorded as failed
            self.show_traceback(ctx, exc.traceback)
            typer.echo(f"Run failed: {exc.line()}", err=True)
            raise typer.Exit(1) from None
        except (UserError, PluginError) as exc:
            self.show_traceback(ctx, exc)
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from None
        except TrainingDiverged as exc:
            self.show_traceback(ctx, exc)
            typer.echo(f"Run failed: {exc}", err=True)
            raise typer.Exit(1) from None
        except OSError as exc:  # a full disk, a name too long, a file where a folder goes, ...
            error = file_system_error(exc)
            if error is None:
                raise
            self.show_traceback(ctx, exc)
            typer.echo(f"Error: {error}", err=True)
            raise typer.Exit(2) from None

    @staticmethod
    def show_traceback(ctx, exc_or_text) -> None:
        if not (ctx.params.get("show_traceback") or env_flag("PETBENCH_TRACEBACK")):
            return
        text = exc_or_text if isinstance(exc_or_text, str) else "".join(traceback.format_exception(exc_or_text))
        typer.echo(text.rstrip(), err=True)


#: Options whose value is a path: an empty one would silently mean the current folder.
PATH_OPTIONS = ("--results", "--out", "--data-root", "--slurm-folder", "--cache")


def refuse_empty_paths(args: list[str]) -> None:
    for index, arg in enumerate(args):
        name, sep, value = arg.partition("=")
        if name not in PATH_OPTIONS:
            continue
        if not sep:
            value = args[index + 1] if index + 1 < len(args) else "x"
        if not value.strip():
            raise UserError(f"{name} is empty; give a path (an empty one would mean the current folder)")


def create_app(host: PluginHost | None = None) -> typer.Typer:
    from . import (bundle_cmd, check_cmd, compare_cmd, data_cmd, figure_cmd, grid_cmd, import_cmd, info_cmd, list_cmd,
                   plugins_cmd, report_cmd, run_cmd, score_cmd, split_cmd)

    if host is not None:
        set_host(host)
    app = typer.Typer(cls=PetbenchGroup, no_args_is_help=True, pretty_exceptions_enable=False,
                      help="petbench: benchmark LPET -> SPET reconstruction methods on PET datasets.")
    app.callback()(global_options)
    for module in (plugins_cmd, list_cmd, info_cmd, run_cmd, score_cmd, compare_cmd, check_cmd, grid_cmd, figure_cmd,
                   split_cmd, import_cmd, bundle_cmd, report_cmd):
        module.add_to(app)
    app.add_typer(data_cmd.load_data_app(), name="data")
    from ..plugins import get_host

    get_host().add_commands(app)  # each plugin on its own: one that raises is reported, the rest stay
    return app


def global_options(
    strict_plugins: bool = typer.Option(False, "--strict-plugins", help="Fail when any plugin fails to load."),
    show_traceback: bool = typer.Option(False, "--traceback",
                                        help="Show the traceback of an error (also PETBENCH_TRACEBACK=1)."),
) -> None:
    """petbench: benchmark LPET -> SPET reconstruction methods on PET datasets."""
    if strict_plugins:
        from ..plugins import get_host

        host = get_host()
        if host.failures:
            raise PluginError(host.failures[0].line())
        set_host(get_plugin_manager(strict=True))


def show_warnings() -> None:
    """Datasets report skipped subjects and other problems through the ``petbench`` logger."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger = logging.getLogger("petbench")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main() -> None:
    tune_allocator()  # before any large allocation (docs/reproducing.md, "What it costs")
    show_warnings()
    try:
        app = create_app()
    except PluginError as exc:  # strict mode: a broken plugin is fatal
        typer.echo(f"Error: {exc}", err=True)
        raise SystemExit(2) from None
    app()
