"""Each run counted once: records of the same setup and seed (e.g. one run under two plugin versions)
are one run in a leaderboard, and rows that mix plugin versions say so."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .identity import setup_key

if TYPE_CHECKING:
    from .record import RunRecord


def count_each_run_once(records: list[RunRecord], note: Callable[[str], None]) -> list[RunRecord]:
    """The newest finished record of each (method, options, dataset, options, protocol, seed); a
    ``note:`` line names the records left out, and one names every leaderboard row (method, dataset,
    DRF) whose runs come from different versions of the method's code."""
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        groups.setdefault(setup_key(record.data), []).append(record)
    kept = []
    for group in groups.values():
        group.sort(key=lambda r: (str(r.data.get("finished_at") or ""), r.run_id), reverse=True)
        kept.append(group[0])
        if len(group) > 1:
            note(f"run {group[0].run_id} ({code_version(group[0])}) counts once for its setup and seed; "
                 f"left out: " + ", ".join(f"{r.run_id} ({code_version(r)})" for r in group[1:]))
    versions: dict[tuple, set[str]] = {}
    for record in kept:
        row = (record.method, record.dataset, record.data.get("protocol", {}).get("drf"))
        versions.setdefault(row, set()).add(code_version(record))
    for (method, dataset, drf), found in versions.items():
        if len(found) > 1:
            note(f"the {method!r} runs on {dataset} at DRF {drf} come from different versions of its code "
                 f"({'; '.join(sorted(found))}); re-run the older ones to compare like with like")
    order = {id(r): i for i, r in enumerate(records)}
    return sorted(kept, key=lambda r: order[id(r)])


def code_version(record: RunRecord) -> str:
    method = record.data.get("method", {})
    source = method.get("source")
    return (method.get("dist") or "in-process") + (f", source {source}" if source else "")
