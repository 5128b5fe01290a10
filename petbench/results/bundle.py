"""Run records that leave a results folder and join another: ``petbench export`` writes a bundle,
``petbench merge`` adds one to a results folder.

A bundle is a tar.gz archive holding ``petbench-bundle.json`` (the manifest: every member's size and
SHA-256) and, per run, ``<run id>/run.json``, ``metrics.csv``, optionally ``history.jsonl`` and the
predictions ``predictions/<subject>.nii.gz``. Checkpoints never travel (they are pickles).

A bundle may come from anyone, so merge trusts none of it: it reads the archive member by member (never
``extractall``), refuses the whole bundle at the first member that is a link, a device or anything but a
regular file or folder, whose name is not one of the names above, that is larger than its kind may be,
or whose bytes do not match the manifest; the files are written under names petbench builds from
checked parts, into a staging folder inside the results folder, and every run is validated as a record
(:func:`validate_run`) before any of them is moved into place. Nothing is ever unpickled.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from ..atomic import atomic_path
from ..errors import UserError
from .record import METRICS_FILE, RUN_FILE, DamagedRun, RunRecord, read_record, read_run_folder

MANIFEST = "petbench-bundle.json"
BUNDLE_VERSION = 1
HISTORY = "history.jsonl"
RUN_ID = r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,199}"
SUBJECT = r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}"
MEMBER = re.compile(rf"^(?P<run>{RUN_ID})/(?:(?P<file>run\.json|metrics\.csv|history\.jsonl)|"
                    rf"predictions/(?P<subject>{SUBJECT})\.nii(?P<gz>\.gz)?)$")
FOLDER = re.compile(rf"^(?P<run>{RUN_ID})(/predictions)?/?$")
MiB = 1 << 20
#: the most bytes a member of each kind may hold (a bigger one, or one that inflates past it, is refused)
LIMITS = {RUN_FILE: 4 * MiB, METRICS_FILE: 64 * MiB, HISTORY: 64 * MiB, "prediction": 1024 * MiB,
          MANIFEST: 16 * MiB}
TOTAL_LIMIT = 64 * 1024 * MiB  # all members together, as read (inflated)


def validate_run(path: Path) -> tuple[RunRecord | None, str | None]:
    """The one place a merged run is validated: the record schema every view reads with
    (:func:`~petbench.results.record.read_run_folder`: pydantic schema, bounded reading, metrics file
    against the test split and its seal, run id = folder name). ``(record, None)`` or ``(None, why)``."""
    found = read_run_folder(path)
    if found is None:
        return None, f"{path / RUN_FILE}: missing"
    if isinstance(found, DamagedRun):
        return None, found.line()
    if not found.finished:
        return None, f"{path / RUN_FILE}: status {found.status!r}; only finished runs are merged"
    return found, None


# -- export -------------------------------------------------------------------------------------------
def run_files(run_dir: Path, predictions: bool) -> list[tuple[str, Path]]:
    """``(member name, file)`` of one run, in archive order."""
    names = [(f"{run_dir.name}/{RUN_FILE}", run_dir / RUN_FILE), (f"{run_dir.name}/{METRICS_FILE}", run_dir / METRICS_FILE)]
    if (run_dir / HISTORY).is_file():
        names.append((f"{run_dir.name}/{HISTORY}", run_dir / HISTORY))
    if predictions and (run_dir / "predictions").is_dir():
        names += [(f"{run_dir.name}/predictions/{p.name}", p) for p in sorted((run_dir / "predictions").iterdir())
                  if MEMBER.match(f"{run_dir.name}/predictions/{p.name}") and p.is_file() and not p.is_symlink()]
    return names


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def export_bundle(records: list[RunRecord], out: Path, *, predictions: bool = False,
                  log: Callable[[str], None] = print) -> dict:
    """Write the bundle of ``records`` to ``out`` (atomically); returns its manifest."""
    from ..runner import now

    members: list[tuple[str, Path]] = []
    for record in records:
        if not MEMBER.match(f"{record.path.name}/{RUN_FILE}"):
            raise UserError(f"run folder {record.path} has a name a bundle cannot carry; rename it to its run id")
        members += run_files(record.path, predictions)
    files = {name: {"size": path.stat().st_size, "sha256": file_digest(path)} for name, path in members}
    manifest = {"petbench_bundle": BUNDLE_VERSION, "created_at": now(), "runs": [r.path.name for r in records],
                "predictions": predictions, "files": files}
    text = json.dumps(manifest, indent=2).encode()
    with atomic_path(out, ".tar.gz") as tmp:
        with tarfile.open(tmp, "w:gz") as archive:
            add_bytes(archive, MANIFEST, text)
            for name, path in members:
                add_bytes(archive, name, path.read_bytes())
    log(f"wrote {out}: {len(records)} run(s), {len(members)} files" + (" (with predictions)" if predictions else ""))
    return manifest


def add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    archive.addfile(info, io.BytesIO(data))


# -- reading an archive, member by member ----------------------------------------------------------------
@dataclass
class Member:
    name: str
    kind: str  # "file", "folder", "link" or "special"
    size: int
    open: Callable[[], io.BufferedIOBase] | None = None


def members_of(path: Path) -> Iterator[Member]:
    """The archive's members as :class:`Member`, tar (any compression) or zip; an unreadable archive is an error."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    mode = (info.external_attr >> 16) & 0o170000
                    kind = "folder" if info.is_dir() else "link" if mode == 0o120000 else \
                        "file" if mode in (0, 0o100000) else "special"
                    yield Member(info.filename, kind, info.file_size, lambda i=info: archive.open(i))
            return
        with tarfile.open(path, "r:*") as archive:
            for info in archive:
                kind = "file" if info.isreg() else "folder" if info.isdir() else \
                    "link" if info.issym() or info.islnk() else "special"
                yield Member(info.name, kind, info.size, lambda i=info: archive.extractfile(i))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        first = (str(exc).splitlines() or [""])[0].rstrip(":")
        raise UserError(f"bundle {path}: not a readable tar.gz or zip archive ({type(exc).__name__}: {first}); "
                        f"make it with `petbench export`") from None


def member_limit(name: str) -> int:
    if name == MANIFEST:
        return LIMITS[MANIFEST]
    match = MEMBER.match(name)
    return LIMITS["prediction"] if match.group("subject") else LIMITS[match.group("file")]


def read_limited(member: Member, limit: int, where: str) -> bytes:
    """The member's bytes; more than ``limit`` (whatever its header claims) is refused."""
    with member.open() as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UserError(f"{where}: member {member.name!r} inflates past {limit // MiB} MiB, the most a "
                        f"{member.name.rpartition('/')[2]} may hold; the bundle is refused")
    return data


# -- merge --------------------------------------------------------------------------------------------
@dataclass
class MergeReport:
    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)  # the same run with the same results: counted once
    conflicts: list[str] = field(default_factory=list)  # one identity, different results: not merged


def merge_bundle(bundle: Path, results: Path, *, log: Callable[[str], None] = print) -> MergeReport:
    """Add the runs of ``bundle`` to ``results``. A hostile or damaged bundle is a :class:`UserError` and
    changes nothing; runs already present with the same results are counted once, runs with an identity
    already present and different results are reported and left out."""
    bundle, results = Path(bundle), Path(results)
    if not bundle.is_file():
        raise UserError(f"bundle {bundle} is not a file; give the archive `petbench export` wrote")
    results.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".merge-", dir=results))
    try:
        runs = stage(bundle, staging)
        report = MergeReport()
        for run_id in runs:
            place(staging / run_id, results / run_id, report)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for run_id in report.added:
        log(f"added run {run_id}")
    for run_id in report.present:
        log(f"run {run_id} is already here with the same results; counted once")
    for line in report.conflicts:
        log(f"conflict: {line}")
    return report


def stage(bundle: Path, staging: Path) -> list[str]:
    """Read and check every member into ``staging``; returns the run ids (each folder validated)."""
    manifest, seen, total = None, {}, 0
    for member in members_of(bundle):
        where = f"bundle {bundle}"
        name = member.name
        if member.kind == "link":
            raise UserError(f"{where}: member {name!r} is a link; a bundle holds regular files only, refused")
        if member.kind == "special":
            raise UserError(f"{where}: member {name!r} is a device or other special file; refused")
        if member.kind == "folder":
            if not FOLDER.match(name):
                raise UserError(f"{where}: folder {name!r} is not a run's folder; refused")
            continue
        if name != MANIFEST and not MEMBER.match(name):
            raise UserError(f"{where}: member {name!r} is not a file a bundle may carry (run.json, metrics.csv, "
                            f"history.jsonl, predictions/<subject>.nii.gz under a run id, and {MANIFEST}); refused")
        if name in seen or (name == MANIFEST and manifest is not None):
            raise UserError(f"{where}: member {name!r} appears twice; refused")
        limit = member_limit(name)
        if member.size > limit:
            raise UserError(f"{where}: member {name!r} is {member.size // MiB} MiB, more than the "
                            f"{limit // MiB} MiB a {name.rpartition('/')[2]} may hold; refused")
        data = read_limited(member, limit, where)
        total += len(data)
        if total > TOTAL_LIMIT:
            raise UserError(f"{where}: its members inflate past {TOTAL_LIMIT // MiB} MiB; refused")
        if name == MANIFEST:
            manifest = parse_manifest(data, where)
            continue
        match = MEMBER.match(name)
        target = staging / match.group("run")  # built from checked parts, never from the name as given
        target = target / "predictions" / f"{match.group('subject')}.nii{match.group('gz') or ''}" \
            if match.group("subject") else target / match.group("file")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as handle:
            handle.write(data)
        seen[name] = hashlib.sha256(data).hexdigest()
    if manifest is None:
        raise UserError(f"bundle {bundle}: no {MANIFEST}; make bundles with `petbench export`")
    listed = manifest["files"]
    for name, digest in seen.items():
        if name not in listed:
            raise UserError(f"bundle {bundle}: member {name!r} is not in its manifest; refused")
        if listed[name]["sha256"] != digest:
            raise UserError(f"bundle {bundle}: member {name!r} does not match its checksum in the manifest "
                            f"(damaged or altered); refused")
    absent = sorted(set(listed) - set(seen))
    if absent:
        raise UserError(f"bundle {bundle}: {absent[0]!r} is in the manifest but not in the archive; refused")
    runs = sorted({MEMBER.match(name).group("run") for name in seen})
    for run_id in runs:
        record, problem = validate_run(staging / run_id)
        if problem:
            raise UserError(f"bundle {bundle}: run {run_id}: {problem.replace(str(staging) + os.sep, '')}; refused")
        if record.run_id != run_id:
            raise UserError(f"bundle {bundle}: run {run_id}: its run.json says run_id {record.run_id!r}; refused")
        test = set(map(str, (record.data.get("splits") or {}).get("test") or []))
        for file in (staging / run_id / "predictions").glob("*") if (staging / run_id / "predictions").is_dir() else []:
            subject = file.name.removesuffix(".gz").removesuffix(".nii")
            if subject not in test:
                raise UserError(f"bundle {bundle}: run {run_id}: prediction {file.name} is of no test subject "
                                f"of the run; refused")
    return runs


def parse_manifest(data: bytes, where: str) -> dict:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{where}: {MANIFEST} is not valid JSON ({exc}); refused") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("petbench_bundle") != BUNDLE_VERSION or \
            not isinstance(files, dict) or not all(isinstance(v, dict) and isinstance(v.get("sha256"), str)
                                                   for v in files.values()):
        raise UserError(f"{where}: {MANIFEST} is not a petbench bundle manifest of version {BUNDLE_VERSION}; "
                        f"refused")
    return manifest


def same_results(a: RunRecord, b: RunRecord) -> bool:
    def frame(record):
        rows = record.rows()
        rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
        return rows.sort_values(["subject", "metric"]).reset_index(drop=True)[["subject", "metric", "value"]]

    try:
        return frame(a).equals(frame(b))
    except Exception:
        return False


def place(staged: Path, target: Path, report: MergeReport) -> None:
    if target.exists() or target.is_symlink():
        existing, problem = read_record(target)
        incoming = RunRecord(staged, json.loads((staged / RUN_FILE).read_text()))
        if existing is not None and existing.finished and same_results(existing, incoming):
            report.present.append(target.name)
        else:
            why = problem or ("its record here is not finished" if existing is not None else "its folder here "
                              "holds no record")
            if existing is not None and existing.finished:
                why = "the results differ (metrics.csv)"
            report.conflicts.append(f"run {target.name}: one identity, and {why}; the bundle's copy is left out")
        return
    os.rename(staged, target)  # same file system: the run appears whole or not at all
    report.added.append(target.name)
