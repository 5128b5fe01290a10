"""Name -> entry registries for datasets, methods and metrics, with provenance."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from .dataset import Dataset
from .errors import PluginError, UserError
from .method import Method
from .metric import Metric
from .names import unknown_name_message


@dataclass
class Entry:
    """One registered dataset, method or metric and who supplied it."""

    name: str
    target: Any  # the class / Metric, or a lazy "module:attr" string
    plugin: str
    dist: str  # "name==version" of the distribution, or "" for plugins registered in-process
    description: str = ""
    kind: str = ""  # "dataset", "method" or "metric": what a lazy target must turn out to be

    def load(self) -> Any:
        if isinstance(self.target, str):
            module_name, _, attr = self.target.partition(":")
            try:
                target = getattr(importlib.import_module(module_name), attr)
            except Exception as exc:  # a lazy target that does not import is the plugin's fault
                raise PluginError(
                    f"{self.name!r} from plugin {self.plugin!r} ({self.dist or 'in-process'}) "
                    f"failed to load {self.target!r}: {type(exc).__name__}: {exc}"
                ) from exc
            if self.kind:
                validate_target(self.kind, target, f"plugin {self.plugin!r} ({self.dist or 'in-process'})")
            self.target = target
        return self.target


@dataclass
class Registry:
    """Entries of one kind ("dataset", "method" or "metric")."""

    kind: str
    entries: dict[str, Entry] = field(default_factory=dict)
    failures: list = field(default_factory=list)  # the host's PluginFailure list: why a name may be missing

    def add(self, entry: Entry) -> None:
        previous = self.entries.get(entry.name)
        if previous is not None:
            raise PluginError(
                f"{self.kind} {entry.name!r} is registered twice: by plugin {previous.plugin!r} "
                f"({previous.dist or 'in-process'}) and by plugin {entry.plugin!r} "
                f"({entry.dist or 'in-process'}); uninstall or disable one of them"
            )
        self.entries[entry.name] = entry

    def names(self) -> list[str]:
        return sorted(self.entries)

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def __iter__(self):
        return iter(self.entries[name] for name in self.names())

    def entry(self, name: str) -> Entry:
        try:
            return self.entries[name]
        except KeyError:
            raise UserError(unknown_name_message(self.kind, name, self.names()) + failure_note(self.failures)) from None

    def get(self, name: str) -> Any:
        return self.entry(name).load()


def validate_target(kind: str, target: Any, where: str) -> None:
    """Refuse a registered object that is not what the role needs (a class for datasets and
    methods, a :class:`~petbench.Metric` for metrics), naming the plugin that registered it."""
    if kind == "metric":
        if not isinstance(target, Metric):
            raise PluginError(f"{where} registered {target!r} as a metric, but it is not a petbench.Metric")
        return
    base = {"dataset": Dataset, "method": Method}[kind]
    if isinstance(target, base):
        raise PluginError(f"{where} registered an instance of {type(target).__name__} as a {kind}; "
                          f"register the class itself")
    if not (isinstance(target, type) and issubclass(target, base)):
        raise PluginError(f"{where} registered {target!r} as a {kind}, but it is not a subclass of "
                          f"petbench.{base.__name__}")


def failure_note(failures: list) -> str:
    """For an unknown name: the plugins that failed to load (each may have been meant to supply it),
    each with its distribution and the first line of its error, and where to see the rest."""
    if not failures:
        return ""
    lines = [f"plugin {f.name!r} ({f.dist or 'in-process'}) failed at {f.stage}: "
             f"{(f.error.strip().splitlines() or [''])[0]}" for f in failures]
    return (" It may come from a plugin that failed to load: " + "; ".join(lines)
            + ". Run `petbench plugins` for the traceback.")
