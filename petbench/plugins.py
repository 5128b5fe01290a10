"""The plugin manager: built-in plugins, entry-point plugins, failures kept, registries built.

Each entry point in the ``petbench`` group is loaded on its own; a plugin that fails to import or
to register is recorded in :attr:`PluginHost.failures` and stops nothing else, unless strict mode
(``PETBENCH_STRICT_PLUGINS=1`` or ``--strict-plugins``) makes it fatal.
``PETBENCH_DISABLE_PLUGINS=name,...`` switches plugins off by name.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import traceback
from dataclasses import dataclass, field
from functools import cached_property

import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import Entry, Registry

DEFAULT_PLUGINS = (
    "petbench.default_plugins.metrics",
    "petbench.default_plugins.lpet",
)

ENTRY_POINT_GROUP = "petbench"


@dataclass
class PluginFailure:
    """A plugin that could not be loaded or could not register."""

    name: str
    dist: str
    stage: str  # "import" or "register"
    error: str
    traceback: str = ""

    def line(self) -> str:
        return f"plugin {self.name!r} ({self.dist or 'in-process'}) failed at {self.stage}: {self.error}"


@dataclass
class PluginInfo:
    name: str
    dist: str  # "name==version" or "" when registered in-process
    builtin: bool


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def disabled_plugins() -> set[str]:
    return {n.strip() for n in os.environ.get("PETBENCH_DISABLE_PLUGINS", "").split(",") if n.strip()}


@dataclass
class PluginHost:
    """A pluggy manager plus what was registered through it and what failed."""

    pm: pluggy.PluginManager
    strict: bool = False
    infos: dict[str, PluginInfo] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)

    # -- registering plugins -------------------------------------------------------------
    def add(self, plugin: object, name: str, dist: str = "", builtin: bool = False) -> None:
        """Register a plugin object (module or instance) under ``name``."""
        if name in disabled_plugins():
            return
        self.pm.register(plugin, name=name)
        self.infos[name] = PluginInfo(name=name, dist=dist, builtin=builtin)
        self.__dict__.pop("registries", None)  # rebuild on next access

    def remove(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.infos.pop(name, None)
        self.__dict__.pop("registries", None)

    def fail(self, failure: PluginFailure) -> None:
        if self.strict:
            raise PluginError(failure.line())
        self.failures.append(failure)

    # -- registries ----------------------------------------------------------------------
    @cached_property
    def registries(self) -> dict[str, Registry]:
        registries = {kind: Registry(kind) for kind in ("dataset", "method", "metric")}
        hooks = {"dataset": "register_datasets", "method": "register_methods", "metric": "register_metrics"}
        for name, info in list(self.infos.items()):
            plugin = self.pm.get_plugin(name)
            for kind, hook_name in hooks.items():
                impl = getattr(plugin, hook_name, None)
                if impl is None:
                    continue

                def register(target, _kind=kind, _info=info):
                    try:
                        registries[_kind].add(make_entry(_kind, target, _info))
                    except PluginError as exc:  # a duplicate is refused; the plugin's other entries stay
                        self.fail(PluginFailure(_info.name, _info.dist, "register", str(exc)))

                try:
                    impl(register=register)
                except Exception as exc:
                    self.fail(PluginFailure(name, info.dist, "register", f"{type(exc).__name__}: {exc}",
                                            traceback.format_exc()))
        return registries

    @property
    def datasets(self) -> Registry:
        return self.registries["dataset"]

    @property
    def methods(self) -> Registry:
        return self.registries["method"]

    @property
    def metrics(self) -> Registry:
        return self.registries["metric"]

    def provenance(self, entry: Entry) -> dict:
        return {"plugin": entry.plugin, "dist": entry.dist}


def make_entry(kind: str, target, info: PluginInfo) -> Entry:
    if isinstance(target, str):
        name = target.rpartition(":")[2].lower()
        return Entry(name=name, target=target, plugin=info.name, dist=info.dist)
    name = getattr(target, "name", None)
    if not name or not isinstance(name, str):
        raise PluginError(f"a {kind} registered by plugin {info.name!r} has no string 'name'")
    description = (getattr(target, "description", "") or "").strip().splitlines()
    return Entry(name=name, target=target, plugin=info.name, dist=info.dist,
                 description=description[0] if description else "")


def get_plugin_manager(*, entrypoints: bool = True, builtins: bool = True,
                       strict: bool | None = None) -> PluginHost:
    """A fresh plugin host. Tests use ``entrypoints=False`` and add throwaway plugins."""
    pm = pluggy.PluginManager("petbench")
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm=pm, strict=env_flag("PETBENCH_STRICT_PLUGINS") if strict is None else strict)
    if builtins:
        from . import __version__

        for module_name in DEFAULT_PLUGINS:
            module = importlib.import_module(module_name)
            host.add(module, name=module_name.rpartition(".")[2], dist=f"petbench=={__version__}", builtin=True)
    if entrypoints and not env_flag("PETBENCH_DISABLE_PLUGIN_AUTOLOAD"):
        load_entrypoints(host)
    pm.check_pending()
    return host


def load_entrypoints(host: PluginHost) -> None:
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = f"{ep.dist.name}=={ep.dist.version}" if ep.dist else ""
        if ep.name in disabled_plugins() or ep.name in host.infos:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            host.fail(PluginFailure(ep.name, dist, "import", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            continue
        try:
            host.add(plugin, name=ep.name, dist=dist)
        except Exception as exc:
            host.fail(PluginFailure(ep.name, dist, "register", f"{type(exc).__name__}: {exc}", traceback.format_exc()))


_default_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide host used by the CLI (built once, on first use)."""
    global _default_host
    if _default_host is None:
        _default_host = get_plugin_manager()
    return _default_host


def set_host(host: PluginHost | None) -> None:
    """Replace the process-wide host (tests; ``--strict-plugins``)."""
    global _default_host
    _default_host = host
