"""The ``petbench`` command line (Typer + rich).

:func:`create_app` builds a fresh application for a plugin host (tests pass an isolated one);
:func:`main` is the console script. A user's mistake becomes one line on stderr and exit code 2.
"""
from __future__ import annotations

import typer
from typer.core import TyperGroup

from ..errors import PluginError, TrainingDiverged, UserError
from ..plugins import PluginHost, get_plugin_manager, set_host


class PetbenchGroup(TyperGroup):
    """Turns the errors a user can act on into one clear line, without a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (UserError, PluginError) as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from None
        except TrainingDiverged as exc:
            typer.echo(f"Run failed: {exc}", err=True)
            raise typer.Exit(1) from None


def create_app(host: PluginHost | None = None) -> typer.Typer:
    from . import compare_cmd, data_cmd, list_cmd, plugins_cmd, run_cmd

    if host is not None:
        set_host(host)
    app = typer.Typer(cls=PetbenchGroup, no_args_is_help=True, pretty_exceptions_enable=False,
                      help="petbench: benchmark LPET -> SPET reconstruction methods on PET datasets.")
    app.callback()(global_options)
    for module in (plugins_cmd, list_cmd, run_cmd, compare_cmd):
        module.add_to(app)
    app.add_typer(data_cmd.load_data_app(), name="data")
    from ..plugins import get_host

    get_host().pm.hook.register_commands(cli=app)
    return app


def global_options(
    strict_plugins: bool = typer.Option(False, "--strict-plugins", help="Fail when any plugin fails to load."),
) -> None:
    """petbench: benchmark LPET -> SPET reconstruction methods on PET datasets."""
    if strict_plugins:
        from ..plugins import get_host

        host = get_host()
        if host.failures:
            raise PluginError(host.failures[0].line())
        set_host(get_plugin_manager(strict=True))


def main() -> None:
    try:
        app = create_app()
    except PluginError as exc:  # strict mode: a broken plugin is fatal
        typer.echo(f"Error: {exc}", err=True)
        raise SystemExit(2) from None
    app()
