"""A run's identity: everything that determines the trained model, and nothing else.

It holds the method (name, resolved options, providing distribution and version, and a fingerprint of
the source files its module imports, within its own package, when that distribution is installed editable
or from a working tree), the dataset
(name, options, distribution and version, its content fingerprint), the protocol (split sizes, split
seed, DRF) and the seed. Metrics and the device are not part of it: a new metric scores a finished run
(``petbench score``) instead of making a new one.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

IDENTITY_VERSION = 2


def run_identity(method, method_dist: str, dataset, dataset_dist: str, protocol: dict, seed: int) -> dict:
    return {"version": IDENTITY_VERSION, "method": method_identity(method, method_dist),
            "dataset": {"name": dataset.name, "options": dataset.options, "dist": dataset_dist,
                        "fingerprint": dataset.fingerprint()},
            "protocol": dict(protocol), "seed": int(seed)}


def method_identity(method, dist: str) -> dict:
    """The method's half: name, resolved options, distribution and, for a working tree, its source."""
    return {"name": method.name, "options": method.options, "dist": dist,
            "source": source_fingerprint(type(method), dist)}


def run_id_for(identity: dict) -> str:
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:10]
    method, dataset = identity["method"], identity["dataset"]
    method = method["name"] if isinstance(method, dict) else method
    dataset = dataset["name"] if isinstance(dataset, dict) else dataset
    return f"{method}_{dataset}_drf{identity['protocol']['drf']}_seed{identity['seed']}_{digest}"


def setup_key(record_data: dict) -> str:
    """What a leaderboard treats as "the same run": method, resolved options, dataset, dataset options,
    protocol and seed (not the code version). Two records with one key are one run counted once."""
    return json.dumps([record_data.get("method", {}).get("name"), record_data.get("method", {}).get("options"),
                       record_data.get("dataset", {}).get("name"), record_data.get("dataset", {}).get("options"),
                       record_data.get("protocol"), record_data.get("config", {}).get("seed")],
                      sort_keys=True, default=str)


def source_fingerprint(cls: type, dist: str) -> str | None:
    """sha256 of the method's source files when they can change under the same version: an in-process
    plugin, or a distribution installed editable or from a local directory. None for a released
    install, where the version says it all."""
    if dist and not installed_from_directory(dist.partition("==")[0]):
        return None
    root, files = source_files(cls)
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        try:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
        except (OSError, ValueError):
            continue
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def installed_from_directory(dist_name: str) -> bool:
    try:
        text = importlib.metadata.distribution(dist_name).read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return True  # not installed as a distribution: a working tree on the path
    if not text:
        return False
    try:
        return "dir_info" in json.loads(text)
    except ValueError:
        return False


def source_files(cls: type) -> tuple[Path, list[Path]]:
    """The files of the component's own code: its module and every module of its top-level package that it
    imports, directly or through those modules (``import``/``from ... import``, relative or absolute; read
    from the source, nothing is imported). So editing a distribution's dataset module leaves its method's
    fingerprint as it was, unless the method imports it. A module of the host, or one not in a package, is
    its own file only."""
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if not file:
        return Path("."), []
    top_name = cls.__module__.split(".")[0]
    top_file = getattr(sys.modules.get(top_name), "__file__", None)
    if top_name == "petbench" or not top_file or Path(top_file).name != "__init__.py":
        return Path(file).parent, [Path(file)]
    root = Path(top_file).parent
    return root, imported_files(cls.__module__, Path(file), root)


def module_file(name: str, root: Path) -> Path | None:
    """The file of module ``name`` (``top.sub.mod``) under the top-level package folder ``root``."""
    parts = name.split(".")[1:]
    base = root.joinpath(*parts) if parts else root
    for candidate in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def imported_names(path: Path, module_name: str) -> set[str]:
    """The absolute names of the modules ``path`` (module ``module_name``) imports; for
    ``from X import y`` both ``X`` and ``X.y`` (y may be a submodule)."""
    import ast

    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return set()
    package = module_name if path.name == "__init__.py" else module_name.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[:len(base_parts) - (node.level - 1)] if node.level > 1 else base_parts
                base = ".".join(p for p in base_parts if p)
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def imported_files(module_name: str, file: Path, root: Path) -> list[Path]:
    top = module_name.split(".")[0]
    seen: dict[str, Path] = {module_name: file}
    queue = [module_name]
    while queue:
        name = queue.pop()
        for imported in imported_names(seen[name], name):
            if imported in seen or not (imported == top or imported.startswith(top + ".")):
                continue
            path = module_file(imported, root)
            if path is not None:
                seen[imported] = path
                queue.append(imported)
    return sorted(set(seen.values()))


def describe(identity: dict[str, Any]) -> str:
    method = identity.get("method", {})
    return f"{method.get('name')} ({method.get('dist') or 'in-process'}" + \
        (f", source {method['source']}" if method.get("source") else "") + ")"
