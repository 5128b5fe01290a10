"""``petbench data ...``: dataset utilities (generate the phantom, inspect a UDPET download)."""
import importlib

import typer

data_app = typer.Typer(help="Dataset utilities: generate built-in data, inspect a download.", no_args_is_help=True)

# Each sub-command lives in its own module and adds itself to ``data_app`` on import.
SUBCOMMAND_MODULES = ("petbench.cli.data_generate", "petbench.cli.data_inspect")


def load_data_app() -> typer.Typer:
    for module in SUBCOMMAND_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return data_app
