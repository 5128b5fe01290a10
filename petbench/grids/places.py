"""How a run record stands in the paper's tables and figures: its table places, labels and whether it is
the reference row, as the method declared them (``table_places``, ``display_name``, ``table_reference``,
``figure_labels``, ``efficiency_place``; stored in the record by :func:`petbench.runner.method_extras`).

Records written before methods declared these (no ``display_name`` in the record's method section) fall
back on what those records did store: a method with ``components`` belongs in Table II, one that is a
``variant_of`` another is in Table II only, every other method in Table I; the label is ``paper_name``;
the reference is the method the variants are variants of. A method that declares no place is still
shown in Table I, after the placed rows.
"""
from __future__ import annotations

from ..results.record import RunRecord

UNPLACED = float("inf")  # sorts after every declared position


def method_info(record: RunRecord) -> dict:
    return record.data.get("method") or {}


def is_legacy(record: RunRecord) -> bool:
    """Recorded before methods declared their names and places."""
    return "display_name" not in method_info(record)


def display_name(record: RunRecord) -> str:
    info = method_info(record)
    return info.get("display_name") or info.get("paper_name") or record.method


EXTERNAL_MARK = " (external)"


def is_external(record: RunRecord) -> bool:
    """Predictions made outside petbench and imported (``petbench import``): the row is marked."""
    return (record.data.get("provenance") or {}).get("kind") == "external"


def places(record: RunRecord) -> dict[int, tuple[float, str]]:
    """``{table: (position, label)}``; a position of :data:`UNPLACED` for a row shown without a declared place.
    An imported run's label carries :data:`EXTERNAL_MARK`."""
    found = declared_places(record)
    if is_external(record):
        found = {table: (where, label + EXTERNAL_MARK) for table, (where, label) in found.items()}
    return found


def declared_places(record: RunRecord) -> dict[int, tuple[float, str]]:
    info = method_info(record)
    if not is_legacy(record):
        declared = {int(table): (position, label) for table, (position, label) in
                    (info.get("table_places") or {}).items()}
        return declared or {1: (UNPLACED, display_name(record))}
    tables = ([] if info.get("variant_of") else [1]) + ([2] if info.get("components") else [])
    return {table: (UNPLACED, display_name(record)) for table in tables}


def in_table(record: RunRecord, number: int) -> bool:
    return number in places(record)


def position(record: RunRecord, number: int) -> float:
    return places(record).get(number, (UNPLACED, ""))[0]


def table_label(record: RunRecord, number: int) -> str:
    return places(record).get(number, (UNPLACED, display_name(record)))[1]


def figure_label(record: RunRecord, number: int) -> str:
    labels = method_info(record).get("figure_labels") or {}
    return labels.get(str(number)) or table_label(record, number)


def curve_label(record: RunRecord) -> str:
    """A legend or row label outside the paper tables: Table I's label, else Table II's, else the display name."""
    declared = places(record)
    for number in (1, 2):
        if number in declared and declared[number][0] != UNPLACED:
            return declared[number][1]
    return display_name(record)


def efficiency_position(record: RunRecord) -> float:
    place = method_info(record).get("efficiency_place")
    return UNPLACED if place is None else place


def reference_method(records: list[RunRecord], number: int) -> str | None:
    """The method the others of Table ``number`` are tested against, among ``records`` (all the runs
    considered, not only the table's): one with a place in the table that declares ``table_reference``
    (of several, the one placed last), else, for old records, a method the others are variants of."""
    declared = [r for r in records if method_info(r).get("table_reference") and in_table(r, number)]
    if declared:
        return max(declared, key=lambda r: (position(r, number), r.method)).method
    variants_of = {method_info(r).get("variant_of") for r in records if is_legacy(r)} - {None}
    present = [r.method for r in records if r.method in variants_of]
    return present[0] if present else None
