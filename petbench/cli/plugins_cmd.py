"""``petbench plugins``: every plugin, what it registers, and what failed to load."""
import json

import typer
from rich.console import Console
from rich.table import Table

from ..plugins import disabled_plugins, get_host


def plugins(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List installed plugins with their distribution, what they register, and load failures."""
    host = get_host()
    provided: dict[str, dict[str, list[str]]] = {name: {} for name in host.infos}
    for kind, registry in host.registries.items():
        for entry in registry:
            provided.setdefault(entry.plugin, {}).setdefault(kind + "s", []).append(entry.name)
    if as_json:
        data = {"plugins": [{"name": info.name, "dist": info.dist, "builtin": info.builtin, **provided[info.name]}
                            for info in host.infos.values()],
                "failures": [f.__dict__ for f in host.failures], "disabled": sorted(disabled_plugins())}
        typer.echo(json.dumps(data, indent=2))
        return
    console = Console()
    table = Table("Plugin", "Distribution", "Registers", title="petbench plugins")
    for info in host.infos.values():
        registers = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in provided[info.name].items()) or "–"
        dist = info.dist + (" (built-in)" if info.builtin else "")
        table.add_row(info.name, dist or "in-process", registers)
    console.print(table)
    for failure in host.failures:
        console.print(f"[red]FAILED[/red] {failure.line()}", markup=True, highlight=False)
    if disabled_plugins():
        console.print(f"disabled by PETBENCH_DISABLE_PLUGINS: {', '.join(sorted(disabled_plugins()))}",
                      markup=False, highlight=False)


def add_to(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
