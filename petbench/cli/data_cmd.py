"""``petbench data ...``: dataset utilities (generate the phantom, inspect a UDPET download)."""
import typer

data_app = typer.Typer(help="Dataset utilities: generate built-in data, inspect a download.", no_args_is_help=True)
