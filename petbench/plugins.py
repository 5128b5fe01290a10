"""The plugin manager: built-in plugins, entry-point plugins, failures kept, registries built.

Each entry point in the ``petbench`` group is loaded on its own; a plugin that fails to import or
to register is recorded in :attr:`PluginHost.failures` and stops nothing else, unless strict mode
(``PETBENCH_STRICT_PLUGINS=1`` or ``--strict-plugins``) makes it fatal.
``PETBENCH_DISABLE_PLUGINS=name,...`` switches plugins off by name.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import traceback
from dataclasses import dataclass, field
from functools import cached_property

import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import Entry, Registry, validate_target

DEFAULT_PLUGINS = (
    "petbench.default_plugins.metrics",
    "petbench.default_plugins.lpet",
    "petbench.default_plugins.udpet",
    "petbench.default_plugins.folder",
    "petbench.default_plugins.phantom",
    "petbench.default_plugins.paper_metrics",
    "petbench.loggers.tensorboard",
    "petbench.loggers.mlflow",
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


#: The names of the hooks a plugin can implement (see :mod:`petbench.hookspecs`).
HOOK_NAMES = tuple(sorted(name for name, value in vars(hookspecs).items()
                          if callable(value) and hasattr(value, "petbench_spec")))


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
        """Register a plugin object (module or instance) under ``name``.

        A plugin whose hook implementations do not fit the specs (an unknown hook, a misspelt
        argument, a hook function without ``@hookimpl``) is refused with a :class:`PluginError`
        naming it, and nothing of it stays registered.
        """
        if name in disabled_plugins():
            return
        where = f"plugin {name!r} ({dist or 'in-process'})"
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"{where}: " + " ".join(str(exc).split())) from None
        try:
            check_hooks(self.pm, plugin, name, where)
        except PluginError:
            self.pm.unregister(name=name)
            raise
        self.infos[name] = PluginInfo(name=name, dist=dist, builtin=builtin)
        self.__dict__.pop("registries", None)  # rebuild on next access

    def remove(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.infos.pop(name, None)
        self.__dict__.pop("registries", None)

    def fail(self, failure: PluginFailure) -> None:
        if self.strict:
            raise PluginError(failure.line())
        if failure.line() not in {f.line() for f in self.failures}:  # e.g. register_commands on every create_app
            self.failures.append(failure)

    # -- registries ----------------------------------------------------------------------
    @cached_property
    def registries(self) -> dict[str, Registry]:
        registries = {kind: Registry(kind, failures=self.failures) for kind in ("dataset", "method", "metric")}
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

    # -- commands ------------------------------------------------------------------------
    def add_commands(self, cli) -> None:
        """Call every plugin's ``register_commands`` on its own: one that raises is recorded
        as a failure (fatal in strict mode) and the other plugins' commands stay."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            info = self.infos.get(impl.plugin_name)
            dist = info.dist if info else ""
            try:
                impl.function(cli=cli)
            except Exception as exc:
                self.fail(PluginFailure(impl.plugin_name, dist, "register", f"{type(exc).__name__}: {exc}",
                                        traceback.format_exc()))


def check_hooks(pm: pluggy.PluginManager, plugin: object, name: str, where: str) -> None:
    """Refuse hook implementations petbench would never call: an unknown hook name (a typo)
    and a function named like a hook but not marked with ``@petbench.hookimpl``."""
    implemented = set()
    for caller in pm.get_hookcallers(plugin) or []:
        implemented.add(caller.name)
        if caller.has_spec():
            continue
        if any(impl.plugin_name == name and not impl.optionalhook for impl in caller.get_hookimpls()):
            close = difflib.get_close_matches(caller.name, HOOK_NAMES, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else f" Valid hooks: {', '.join(HOOK_NAMES)}"
            raise PluginError(f"{where} implements {caller.name!r}, which is not a petbench hook.{hint}")
    for hook_name in HOOK_NAMES:
        if hook_name not in implemented and callable(getattr(plugin, hook_name, None)):
            raise PluginError(f"{where} defines {hook_name}() without @petbench.hookimpl, so petbench would "
                              f"never call it; decorate it with @hookimpl (from petbench import hookimpl)")


def make_entry(kind: str, target, info: PluginInfo) -> Entry:
    where = f"plugin {info.name!r} ({info.dist or 'in-process'})"
    if isinstance(target, str):
        if ":" not in target:
            raise PluginError(f"{where} registered the {kind} {target!r}; a lazy target is 'module:attribute'")
        name = target.rpartition(":")[2].lower()
        return Entry(name=name, target=target, plugin=info.name, dist=info.dist, kind=kind)
    validate_target(kind, target, where)
    name = getattr(target, "name", None)
    if not name or not isinstance(name, str):
        raise PluginError(f"a {kind} registered by {where} has no string 'name'")
    description = (getattr(target, "description", "") or "").strip().splitlines()
    return Entry(name=name, target=target, plugin=info.name, dist=info.dist,
                 description=description[0] if description else "", kind=kind)


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
