"""Grid definitions: the runs that make a table.

A grid is the product ``methods × datasets × DRFs × n_unpaired × n_train × seeds`` under one
preset (the test size and split seed are the grid's); each element is a :class:`Cell`, i.e. one
``petbench run``. Methods and datasets may carry options, and an
entry such as ``tiny-cnn[epochs=2,4;lr=1e-3]`` expands to one variant per combination of values.

Three grids are built in: ``table1`` and ``table2`` (the paper's Table I, the comparison, and Table II,
the ablation) and ``label-efficiency`` (methods against the number of paired training subjects). Their
methods are the installed ones that declare a place in them (``Method.table_places``,
``Method.efficiency_place``), found when the grid is resolved, in the order of their places. Other
grids are TOML files (see docs/grids.md).
"""
from __future__ import annotations

import itertools
import json
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from ..data.protocol import Protocol
from ..errors import PluginError, UserError
from ..method import places_of
from ..names import unknown_name_message
from ..options import SEED_MAX, parse_value
from ..plugins import PluginHost, get_host
from ..runner import PRESETS, RunConfig

#: The host's own method whose rows are the low-dose input itself (drawn as a reference line, not a method).
INPUT_METHOD = "lpet"


@dataclass(frozen=True)
class BuiltinGrid:
    description: str
    table: int | None = None  # its methods: those with a place in this table ...
    efficiency: bool = False  # ... or in the label-efficiency grid
    settings: tuple[tuple[str, Any], ...] = ()  # the grid's defaults (command-line values override them)


BUILTIN_GRIDS = {
    "table1": BuiltinGrid("Table I of the paper (comparison)", table=1),
    "table2": BuiltinGrid("Table II of the paper (ablation)", table=2),
    "label-efficiency": BuiltinGrid("Label efficiency: each method against the number of paired training subjects",
                                    efficiency=True, settings=(("n_train", (2, 5, 10, 30)), ("drfs", (10,)))),
}
#: Protocol sizes a grid can vary (its axes next to DRF and seed).
SIZE_AXES = ("n_unpaired", "n_train")

NAME = re.compile(r"^\s*([A-Za-z0-9_.+\-]+)\s*(?:\[(.*)\])?\s*$", re.S)
KEY = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$", re.S)


@dataclass
class Variant:
    """A method or a dataset with fixed options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if not self.options:
            return self.name
        return f"{self.name}[{','.join(f'{k}={format_value(v)}' for k, v in self.options.items())}]"

    def as_dict(self) -> dict:
        return {"name": self.name, "options": dict(self.options)}


@dataclass
class Cell:
    """One run of a grid. ``varied`` names the size axes on which the grid has several values:
    only those appear in the cell's key and title (a grid with one size keeps the keys it had)."""

    method: Variant
    dataset: Variant
    drf: int
    seed: int
    n_train: int = 30
    n_unpaired: int = 120
    varied: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Unique within a grid; stable across invocations (it names the cell in the grid's state)."""
        sizes = "".join(f" | {axis}{getattr(self, axis)}" for axis in self.varied)
        return f"{self.method.label} | {self.dataset.label} | drf{self.drf}{sizes} | seed{self.seed}"

    @property
    def title(self) -> str:
        sizes = "".join(f", {axis} {getattr(self, axis)}" for axis in self.varied)
        return f"{self.method.label} on {self.dataset.label}, DRF {self.drf}{sizes}, seed {self.seed}"


@dataclass
class GridSpec:
    """What to run. ``preset`` may be ``auto``; the grid runner resolves it once for all cells.
    ``n_train`` and ``n_unpaired`` are axes (an int is a one-value list)."""

    name: str
    methods: list[Variant]
    datasets: list[Variant]
    drfs: list[int] = field(default_factory=lambda: [10])
    seeds: list[int] = field(default_factory=lambda: [0])
    n_train: list[int] = field(default_factory=lambda: [30])
    n_test: int = 20
    n_unpaired: list[int] = field(default_factory=lambda: [120])
    split_seed: int = 0
    n_val: int = 0  # validation subjects (see Protocol): 0 = the paper's protocol
    val_every: int = 1
    val_metric: str = "psnr"
    preset: str = "auto"
    metrics: list[str] | None = None
    table: int | None = None  # the paper table this grid reproduces (compare --table / figure --table)
    description: str = ""
    save_predictions: bool = True
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False  # --compile: like the device, not part of a cell's run identity

    def __post_init__(self) -> None:
        if not self.methods:
            raise UserError(f"grid {self.name!r} has no methods")
        if not self.datasets:
            raise UserError(f"grid {self.name!r} has no dataset: give one with --dataset")
        if not self.drfs or not self.seeds:
            raise UserError(f"grid {self.name!r} needs at least one DRF and one seed")
        for axis in (*SIZE_AXES, "drfs", "seeds"):
            values = parse_int_list(getattr(self, axis), f"grid {self.name!r}: {axis}", *AXIS_RANGES[axis])
            setattr(self, axis, values)
        for key, (low, high) in PROTOCOL_RANGES.items():
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise UserError(f"grid {self.name!r}: {key} must be an integer in {low}…{high:,}, not {value!r}")
        if not isinstance(self.save_predictions, bool):
            raise UserError(f"grid {self.name!r}: predictions must be true or false, not {self.save_predictions!r}")
        if self.metrics is not None and (not isinstance(self.metrics, list)
                                         or not all(isinstance(m, str) and m for m in self.metrics)):
            raise UserError(f"grid {self.name!r}: metrics must be a list of names, not {self.metrics!r}")
        if self.preset not in PRESETS:
            raise UserError(f"grid {self.name!r}: unknown preset {self.preset!r}; valid: {', '.join(PRESETS)}")
        if self.table not in (None, 1, 2):
            raise UserError(f"grid {self.name!r}: table must be 1 or 2, not {self.table!r}")

    def protocol(self, cell: Cell) -> Protocol:
        """The cell's protocol. Its paired-train pool is the grid's largest ``n_train``: every cell
        draws the same test subjects, nested training sets and, for one ``n_unpaired``, the same
        unpaired subjects (see :func:`petbench.data.protocol.split_subjects`)."""
        return Protocol(n_train=cell.n_train, n_test=self.n_test, n_unpaired=cell.n_unpaired,
                        split_seed=self.split_seed, drf=cell.drf, n_train_pool=max(self.n_train),
                        n_val=self.n_val, val_every=self.val_every, val_metric=self.val_metric)

    def cells(self) -> list[Cell]:
        """Datasets, then DRFs, then unpaired and paired sizes, then seeds, then methods: the methods of
        one seed run one after the other (in one results folder), which is what lets the Table II
        variants share their Stage I."""
        varied = tuple(axis for axis in SIZE_AXES if len(getattr(self, axis)) > 1)
        cells = [Cell(method, dataset, drf, seed, n_train=n_train, n_unpaired=n_unpaired, varied=varied)
                 for dataset, drf, n_unpaired, n_train, seed, method in
                 itertools.product(self.datasets, self.drfs, self.n_unpaired, self.n_train, self.seeds, self.methods)]
        keys = [c.key for c in cells]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise UserError(f"grid {self.name!r} lists the same run twice: {duplicates[0]}")
        return cells

    def run_config(self, cell: Cell, preset: str | None = None) -> RunConfig:
        return RunConfig(method=cell.method.name, dataset=cell.dataset.name, method_options=dict(cell.method.options),
                         dataset_options=dict(cell.dataset.options), protocol=self.protocol(cell), seed=cell.seed,
                         preset=preset or self.preset, device=self.device, precision=self.precision,
                         metrics=list(self.metrics) if self.metrics else None,
                         save_predictions=self.save_predictions, compile=self.compile)

    def as_dict(self) -> dict:
        return {"name": self.name, "table": self.table, "methods": [m.as_dict() for m in self.methods],
                "datasets": [d.as_dict() for d in self.datasets], "drfs": self.drfs, "seeds": self.seeds,
                "protocol": {"n_train": list(self.n_train), "n_test": self.n_test,
                             "n_unpaired": list(self.n_unpaired), "split_seed": self.split_seed,
                             **({"n_val": self.n_val, "val_every": self.val_every, "val_metric": self.val_metric}
                                if self.n_val else {})},
                "preset": self.preset, "metrics": self.metrics}

    def with_overrides(self, **overrides: Any) -> "GridSpec":
        """A copy with the given fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


# -- entries: "name", "name[key=v1,v2;other=x]" ----------------------------------------------------
def format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def split_top_level(text: str, separators: str) -> list[tuple[str, str]]:
    """Split at separators outside brackets and quotes; returns ``(separator_before, token)`` pairs."""
    tokens, depth, quote, start, before = [], 0, "", 0, ""
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[({":
            depth += 1
        elif char in "])}":
            depth -= 1
        elif char in separators and depth == 0:
            tokens.append((before, text[start:i]))
            before, start = char, i + 1
    if quote or depth:
        raise UserError(f"unbalanced brackets or quotes in {text!r}")
    tokens.append((before, text[start:]))
    return tokens


def parse_option_grid(text: str, where: str) -> dict[str, list[Any]]:
    """``"epochs=2,4;lr=1e-3"`` -> ``{"epochs": [2, 4], "lr": [0.001]}``.

    Keys are separated by ``;`` or ``,``; after ``key=`` every comma-separated value that is not itself
    ``key=...`` is another value of that key. Values are parsed like ``-o key=value``.
    """
    grid: dict[str, list[Any]] = {}
    current = None
    for separator, token in split_top_level(text, ",;"):
        if not token.strip():
            if separator == "," and current is not None:
                raise UserError(f"{where}: empty value for {current!r}")
            continue
        match = KEY.match(token)
        if match:
            current = match.group(1)
            if current in grid:
                raise UserError(f"{where}: option {current!r} is given twice")
            grid[current] = [parse_value(match.group(2))]
        elif current is None or separator == ";":
            raise UserError(f"{where}: {token.strip()!r} is not of the form key=value")
        else:
            grid[current].append(parse_value(token))
    return grid


def expand(name: str, options: dict[str, Any], grid: dict[str, list[Any]]) -> list[Variant]:
    keys = list(grid)
    return [Variant(name, {**options, **dict(zip(keys, values))})
            for values in itertools.product(*(grid[k] for k in keys))]


def parse_entry(entry: Any, kind: str) -> list[Variant]:
    """A method or dataset entry: a string ``name[key=v1,v2]`` or a table
    ``{name=..., options={...}, grid={key=[v1, v2]}}`` (``data_root`` is a dataset-option shortcut)."""
    if isinstance(entry, str):
        match = NAME.match(entry)
        if not match:
            raise UserError(f"{kind} entry {entry!r} is not of the form name or name[key=v1,v2]")
        name, inner = match.group(1), match.group(2)
        return expand(name, {}, parse_option_grid(inner, f"{kind} {entry!r}") if inner else {})
    if isinstance(entry, dict):
        allowed = {"name", "options", "grid"} | ({"data_root"} if kind == "dataset" else set())
        unknown = sorted(set(entry) - allowed)
        if unknown:
            raise UserError(f"{kind} entry {entry!r}: unknown key {unknown[0]!r}; valid: {', '.join(sorted(allowed))}")
        if not isinstance(entry.get("name"), str):
            raise UserError(f"{kind} entry {entry!r} needs a string 'name'")
        options, grid = entry.get("options", {}), entry.get("grid", {})
        if not isinstance(options, dict) or not isinstance(grid, dict):
            raise UserError(f"{kind} entry {entry['name']!r}: 'options' and 'grid' must be tables "
                            f"(e.g. options = {{ epochs = 2 }}), not {shorten(options if not isinstance(options, dict) else grid)}")
        options = dict(options)
        if "data_root" in entry:
            if not isinstance(entry["data_root"], str) or not entry["data_root"].strip():
                raise UserError(f"{kind} entry {entry['name']!r}: data_root must be a path (a string)")
            options["data_root"] = entry["data_root"]
        grid = {k: (list(v) if isinstance(v, list) else [v]) for k, v in grid.items()}
        variants = []
        for base in parse_entry(entry["name"], kind):
            clash = sorted(set(base.options) & (set(options) | set(grid)))
            if clash:
                raise UserError(f"{kind} entry {entry['name']!r}: option {clash[0]!r} is given twice")
            variants += expand(base.name, {**base.options, **options}, grid) if grid else \
                [Variant(base.name, {**base.options, **options})]
        return variants
    raise UserError(f"a {kind} entry must be a string or a table, not {entry!r}")


def parse_entries(entries: Iterable[Any], kind: str) -> list[Variant]:
    return [variant for entry in entries for variant in parse_entry(entry, kind)]


#: The most values one axis of a grid may have (a grid of more cells is a typo, e.g. ``--seeds 0-100000``).
MAX_AXIS_VALUES = 1000
#: The range of each axis's values: seeds are what NumPy and torch accept; counts and DRFs far beyond any dataset.
AXIS_RANGES = {"seeds": (0, SEED_MAX), "drfs": (1, 10_000), "n_train": (0, 1_000_000), "n_unpaired": (0, 1_000_000)}


def parse_int_list(text: str | Iterable[int] | int, what: str, low: int | None = None,
                   high: int | None = None) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` or ``[0, 1]`` -> a list of ints: at most :data:`MAX_AXIS_VALUES` of
    them, each in ``low … high`` when given; anything else is a :class:`UserError`."""
    if isinstance(text, int) and not isinstance(text, bool):
        values = [text]
    elif isinstance(text, (list, tuple)):
        values = list(text)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise UserError(f"{what} must be integers, not {shorten(values)}")
    elif isinstance(text, str):
        if len(text) > 10_000:
            raise UserError(f"{what} is {len(text):,} characters long; give a list of integers (e.g. 0,1,2)")
        values = []
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if re.fullmatch(r"\d+-\d+", part):
                first, last = map(int, part.split("-"))
                if last < first:
                    raise UserError(f"{what} {part!r} is an empty range (give low-high, low <= high)")
                if last - first + 1 + len(values) > MAX_AXIS_VALUES:
                    raise UserError(f"{what} {part!r} has {last - first + 1:,} values; a grid axis has at most "
                                    f"{MAX_AXIS_VALUES:,}")
                values += list(range(first, last + 1))
            elif re.fullmatch(r"[+-]?\d+", part):
                values.append(int(part))
            else:
                raise UserError(f"{what} {shorten(text)} is not a comma-separated list of integers (e.g. 0,1,2)")
    else:
        raise UserError(f"{what} must be an integer or a list of integers, not {shorten(text)}")
    if not values:
        raise UserError(f"{what} {shorten(text)} is empty")
    if len(values) > MAX_AXIS_VALUES:
        raise UserError(f"{what} has {len(values):,} values; a grid axis has at most {MAX_AXIS_VALUES:,}")
    for value in values:
        if low is not None and value < low:
            raise UserError(f"{what} must be {low} or more, not {value}")
        if high is not None and value > high:
            raise UserError(f"{what} must be at most {high:,}, not {value}")
    return values


def shorten(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 1] + "…"


# -- built-in grids and TOML files ------------------------------------------------------------------
def builtin_methods(host: PluginHost, grid: BuiltinGrid, optional: bool = False) -> list[str]:
    """The installed methods that declare a place in ``grid``, in the order of their places (then names);
    in a table's grid, the rows a method declares optional (``Method.table_optional``) only if ``optional``.
    A method whose plugin fails to load cannot say; ``petbench plugins`` shows why."""
    placed = []
    for name in host.methods.names():
        try:
            cls = host.methods.get(name)
        except (UserError, PluginError):  # a plugin that fails to load
            continue
        if grid.efficiency:
            place = getattr(cls, "efficiency_place", None)
        elif getattr(cls, "table_optional", False) and not optional:
            place = None
        else:
            place = places_of(cls).get(grid.table, (None, ""))[0]
        if place is not None:
            placed.append((place, name))
    return [name for _, name in sorted(placed)]


def builtin_grid(name: str, datasets: list[Variant] | None, host: PluginHost | None = None,
                 optional: bool = False, **settings: Any) -> GridSpec:
    grid = BUILTIN_GRIDS[name]
    if not datasets:
        raise UserError(f"grid {name} needs a dataset: add --dataset phantom (built in) or --dataset udpet "
                        f"--data-root DIR")
    methods = builtin_methods(host or get_host(), grid, optional)
    if not methods:
        what = "efficiency_place" if grid.efficiency else f"table_places with table {grid.table}"
        raise UserError(f"grid {name}: no installed method declares a place in it ({what}); install the "
                        f"method plugins (see `petbench plugins`)")
    settings = {**{k: list(v) for k, v in grid.settings}, **{k: v for k, v in settings.items() if v is not None}}
    return GridSpec(name=name, table=grid.table, methods=[Variant(m) for m in methods], datasets=list(datasets),
                    description=grid.description, **settings)


def builtin_names() -> str:
    return ", ".join(BUILTIN_GRIDS)


TOML_KEYS = {"name", "description", "table", "methods", "datasets", "dataset", "drfs", "drf", "seeds", "seed",
             "preset", "metrics", "protocol", "predictions", *SIZE_AXES}
PROTOCOL_KEYS = {"n_train", "n_test", "n_unpaired", "split_seed", "n_val", "val_every", "val_metric"}


def load_toml_grid(path: Path) -> GridSpec:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"grid file {path} does not exist; use {builtin_names()} or a TOML file (see docs/grids.md)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"grid file {path} is not valid TOML: {exc}") from None
    return grid_from_dict(data, default_name=path.stem, where=str(path))


#: The type each top-level key of a grid TOML must have (checked before anything is planned).
TOML_TYPES = {"name": str, "description": str, "table": int, "preset": str, "predictions": bool,
              "protocol": dict, "metrics": (str, list), "methods": (str, list, dict), "datasets": (str, list, dict),
              "dataset": (str, dict), "drfs": (int, str, list), "drf": (int, str, list), "seeds": (int, str, list),
              "seed": (int, str, list), "n_train": (int, str, list), "n_unpaired": (int, str, list)}
PROTOCOL_TYPES = {"n_train": (int, str, list), "n_unpaired": (int, str, list), "n_test": int, "split_seed": int,
                  "n_val": int, "val_every": int, "val_metric": str}
PROTOCOL_RANGES = {"n_test": (1, 1_000_000), "split_seed": (0, SEED_MAX), "n_val": (0, 1_000_000),
                   "val_every": (1, 1_000_000)}
TOML_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "a table", list: "a list"}


def check_types(table: dict, types: dict, where: str) -> None:
    for key, value in table.items():
        kinds = types[key] if isinstance(types[key], tuple) else (types[key],)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            wanted = " or ".join(TOML_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            raise UserError(f"{where}: {key} must be {wanted}, not {shorten(value)}")


def grid_from_dict(data: dict, default_name: str = "grid", where: str = "grid") -> GridSpec:
    """A grid from a TOML table, every key, type and range checked before anything is planned."""
    unknown = sorted(set(data) - TOML_KEYS)
    if unknown:
        raise UserError(f"{where}: " + unknown_name_message("key", unknown[0], sorted(TOML_KEYS)))
    check_types(data, TOML_TYPES, where)
    if isinstance(data.get("protocol"), dict):
        unknown = sorted(set(data["protocol"]) - PROTOCOL_KEYS)
        if unknown:
            raise UserError(f"{where}: [protocol]: " + unknown_name_message("key", unknown[0], sorted(PROTOCOL_KEYS)))
        check_types(data["protocol"], PROTOCOL_TYPES, f"{where}: [protocol]")
        for key, (low, high) in PROTOCOL_RANGES.items():
            value = data["protocol"].get(key)
            if isinstance(value, int) and not low <= value <= high:
                raise UserError(f"{where}: [protocol] {key} = {value} is outside {low}…{high:,}")
    metrics = data.get("metrics")
    if isinstance(metrics, list) and not all(isinstance(m, str) and m.strip() for m in metrics):
        raise UserError(f"{where}: metrics must be names (strings), not {shorten(metrics)}")
    for single, plural in (("dataset", "datasets"), ("drf", "drfs"), ("seed", "seeds")):
        if single in data and plural in data:
            raise UserError(f"{where}: give {single!r} or {plural!r}, not both")
    methods = data.get("methods")
    if not methods:
        raise UserError(f"{where}: 'methods' is missing (e.g. methods = [\"lpet\", \"tiny-cnn[epochs=2,4]\"])")
    datasets = data.get("datasets", [data["dataset"]] if "dataset" in data else [])
    protocol = data.get("protocol", {})
    if not isinstance(protocol, dict) or set(protocol) - PROTOCOL_KEYS:
        raise UserError(f"{where}: [protocol] takes {', '.join(sorted(PROTOCOL_KEYS))}")
    protocol = dict(protocol)
    for axis in SIZE_AXES:  # an axis may sit next to drfs and seeds, or in [protocol]
        if axis in data and axis in protocol:
            raise UserError(f"{where}: give {axis!r} at the top level or in [protocol], not both")
        if axis in data:
            protocol[axis] = data[axis]
    metrics = data.get("metrics")
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    settings = {
        "drfs": parse_int_list(data.get("drfs", data.get("drf", 10)), f"{where}: drfs", *AXIS_RANGES["drfs"]),
        "seeds": parse_int_list(data.get("seeds", data.get("seed", 0)), f"{where}: seeds", *AXIS_RANGES["seeds"]),
        **{k: parse_int_list(v, f"{where}: {k}", *AXIS_RANGES[k]) if k in SIZE_AXES else str(v) if k == "val_metric"
           else parse_int(v, f"{where}: {k}") for k, v in protocol.items()},
    }
    try:
        return GridSpec(name=str(data.get("name", default_name)), description=str(data.get("description", "")),
                        table=data.get("table"), methods=parse_entries(as_list(methods), "method"),
                        datasets=parse_entries(as_list(datasets), "dataset"), preset=str(data.get("preset", "auto")),
                        metrics=metrics, save_predictions=data.get("predictions", True), **settings)
    except TypeError as exc:
        raise UserError(f"{where}: {exc}") from None


def parse_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{what} must be an integer, not {value!r}")
    return value


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def resolve_grid(grid: str, datasets: list[Variant] | None = None, host: PluginHost | None = None,
                 optional: bool = False, **settings: Any) -> GridSpec:
    """A built-in grid (``table1``, ``table2``, ``label-efficiency``: its methods from ``host``, default
    the CLI's; a table's optional rows only if ``optional``) or a TOML file; ``datasets`` and ``settings``
    (when not ``None``) override the grid's."""
    if grid in BUILTIN_GRIDS:
        return builtin_grid(grid, datasets, host, optional, **settings)
    path = Path(grid)
    if path.suffix.lower() != ".toml" and not path.exists():
        raise UserError(f"unknown grid {grid!r}: use {builtin_names()} or the path of a TOML file (docs/grids.md)")
    spec = load_toml_grid(path)
    spec = spec.with_overrides(datasets=datasets or None, **settings)
    spec.__post_init__()
    return spec
