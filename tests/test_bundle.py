"""`petbench export` / `petbench merge`: a bundle from one results folder merges into another with the same
leaderboard; hostile bundles (path traversal, links, a planted pickle, a zip bomb, devices, altered bytes)
are refused and change nothing."""
import hashlib
import io
import json
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from petbench.cli import create_app
from petbench.results import bundle as bundle_module
from petbench.results.bundle import MANIFEST, merge_bundle
from petbench.errors import UserError

RUN = ["run", "--dataset", "tiny", "--n-train", "3", "--n-test", "2", "--n-unpaired", "0", "--drf", "4", "-q",
       "--metrics", "psnr,nmse"]


@pytest.fixture
def cli(host):
    app = create_app(host)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def lab(cli, tmp_path):
    """A results folder with two finished runs and its exported bundle (with predictions)."""
    results = tmp_path / "lab-a"
    for method, extra in (("lpet", []), ("tiny-cnn", ["-o", "epochs=1"])):
        result = cli(*RUN, "--method", method, "--results", results, *extra)
        assert result.exit_code == 0, result.output
    out = tmp_path / "a.tar.gz"
    result = cli("export", "--results", results, "--all", "--predictions", "--out", out)
    assert result.exit_code == 0, result.output
    return results, out


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*")) if ".locks" not in p.parts}


def test_a_bundle_merges_into_another_folder_with_the_same_leaderboard(cli, lab, tmp_path):
    results, out = lab
    with tarfile.open(out) as archive:
        names = archive.getnames()
    assert MANIFEST in names and not [n for n in names if "checkpoints" in n or n.endswith(".pt")]
    assert [n for n in names if "/predictions/" in n]
    other = tmp_path / "lab-b"
    merged = cli("merge", out, "--results", other)
    assert merged.exit_code == 0, merged.output
    assert "2 added" in merged.output
    before = cli("compare", "--results", results, "--format", "csv").output
    after = cli("compare", "--results", other, "--format", "csv").output
    assert before == after and "tiny-cnn" in after
    for run in results.glob("*/run.json"):  # the files are the same bytes
        assert (other / run.parent.name / "run.json").read_bytes() == run.read_bytes()
    again = cli("merge", out, "--results", other)  # a run already present counts once
    assert again.exit_code == 0 and "0 added, 2 already here" in again.output
    assert cli("compare", "--results", other, "--format", "csv").output == before


def test_one_identity_with_other_results_is_reported_not_merged(cli, lab, tmp_path):
    results, out = lab
    other = tmp_path / "lab-b"
    assert cli("merge", out, "--results", other).exit_code == 0
    run_dir = next(p.parent for p in other.glob("lpet_*/run.json"))
    metrics = run_dir / "metrics.csv"
    changed = metrics.read_text().replace("psnr,", "psnr,1").splitlines()
    metrics.write_text("\n".join(changed) + "\n")
    kept = metrics.read_bytes()
    damaged = cli("merge", out, "--results", other)  # unsealed: this folder's copy is damaged, and said so
    assert damaged.exit_code == 1 and "differs from the file its run.json describes" in damaged.output
    from petbench.results.schema import seal

    record = json.loads((run_dir / "run.json").read_text())
    record["metrics_file"] = seal(kept)  # another result under the same identity (e.g. another GPU)
    (run_dir / "run.json").write_text(json.dumps(record))
    result = cli("merge", out, "--results", other)
    assert result.exit_code == 1, result.output
    assert f"conflict: run {run_dir.name}" in result.output and "results differ" in result.output
    assert metrics.read_bytes() == kept


def test_a_grid_s_runs_and_chosen_runs_export(cli, lab, tmp_path):
    results, _ = lab
    run_id = next(results.glob("lpet_*")).name
    out = tmp_path / "one.tar.gz"
    assert cli("export", "--results", results, "--run", run_id, "--out", out).exit_code == 0
    with tarfile.open(out) as archive:
        runs = {n.split("/")[0] for n in archive.getnames() if "/" in n}
        manifest = json.loads(archive.extractfile(MANIFEST).read())
    assert runs == {run_id} and not [n for n in manifest["files"] if "/predictions/" in n]
    missing = cli("export", "--results", results, "--run", "nope", "--out", out)
    assert missing.exit_code == 2 and "nope" in missing.output
    none = cli("export", "--results", results, "--out", out)
    assert none.exit_code == 2 and "--run" in none.output


# -- hostile bundles ------------------------------------------------------------------------------------
def tar_with(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_info(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def manifest_for(members: dict[str, bytes]) -> bytes:
    return json.dumps({"petbench_bundle": 1, "runs": [], "files": {
        name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in members.items()}}).encode()


def real_members(out: Path) -> dict[str, bytes]:
    with tarfile.open(out) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


def hostile(kind: str, lab_bundle: Path, tmp_path: Path) -> tuple[Path, str]:
    """A hostile bundle made from a real one; returns it and a fragment of the refusal."""
    members = real_members(lab_bundle)
    members.pop(MANIFEST)
    run = next(iter(members)).split("/")[0]
    path = tmp_path / f"{kind}.tar.gz"
    target = tmp_path / "outside.txt"
    if kind == "traversal":
        evil = {f"{run}/../../outside.txt": b"owned", **members}
        return tar_with(path, [file_info(MANIFEST, manifest_for(evil))] +
                        [file_info(n, d) for n, d in evil.items()]), "../../outside.txt"
    if kind == "absolute":
        evil = {str(target): b"owned", **members}
        return tar_with(path, [file_info(MANIFEST, manifest_for(evil))] +
                        [file_info(n, d) for n, d in evil.items()]), str(target)
    if kind == "symlink":
        link = tarfile.TarInfo(f"{run}/history.jsonl")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        return tar_with(path, [file_info(MANIFEST, manifest_for(members)), (link, None)] +
                        [file_info(n, d) for n, d in members.items()]), "is a link"
    if kind == "hardlink":
        link = tarfile.TarInfo(f"{run}/history.jsonl")
        link.type, link.linkname = tarfile.LNKTYPE, "/etc/passwd"
        return tar_with(path, [file_info(MANIFEST, manifest_for(members)), (link, None)]), "is a link"
    if kind == "device":
        device = tarfile.TarInfo(f"{run}/metrics.csv")
        device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
        return tar_with(path, [file_info(MANIFEST, manifest_for(members)), (device, None)]), "device"
    if kind == "pickle":
        class Boom:
            def __reduce__(self):
                return (os.system, (f"touch {target}",))

        planted = {**members, f"{run}/checkpoints/last.pt": pickle.dumps(Boom())}
        return tar_with(path, [file_info(MANIFEST, manifest_for(planted))] +
                        [file_info(n, d) for n, d in planted.items()]), "checkpoints/last.pt"
    if kind == "pickle as run.json":
        class Boom2:
            def __reduce__(self):
                return (os.system, (f"touch {target}",))

        planted = dict(members)
        planted[f"{run}/run.json"] = pickle.dumps(Boom2())
        return tar_with(path, [file_info(MANIFEST, manifest_for(planted))] +
                        [file_info(n, d) for n, d in planted.items()]), "run.json"
    if kind == "gzip bomb":
        # 200 MiB of zeros as a metrics.csv (200 KiB compressed): refused by its size before it is read
        info = tarfile.TarInfo(f"{run}/metrics.csv")
        info.size = 200 << 20
        with tarfile.open(path, "w:gz", compresslevel=1) as archive:
            manifest_info, manifest_data = file_info(MANIFEST, manifest_for(members))
            archive.addfile(manifest_info, io.BytesIO(manifest_data))
            archive.addfile(info, ZeroReader(info.size))
        return path, "MiB"
    if kind == "zip bomb":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST, manifest_for(members))
            with archive.open(f"{run}/metrics.csv", "w", force_zip64=True) as handle:
                block = b"\0" * (1 << 20)
                for _ in range(80):  # 80 MiB of zeros: past the 64 MiB a metrics.csv may hold
                    handle.write(block)
        return path, "metrics.csv"
    if kind == "altered":
        changed = dict(members)
        name = next(n for n in changed if n.endswith("metrics.csv"))
        changed[name] = changed[name].replace(b"psnr,", b"psnr,9", 1)
        return tar_with(path, [file_info(MANIFEST, manifest_for(members))] +
                        [file_info(n, d) for n, d in changed.items()]), "checksum"
    if kind == "malformed record":
        changed = dict(members)
        name = next(n for n in changed if n.endswith("run.json"))
        data = json.loads(changed[name])
        data["protocol"]["drf"] = "ten"
        changed[name] = json.dumps(data).encode()
        return tar_with(path, [file_info(MANIFEST, manifest_for(changed))] +
                        [file_info(n, d) for n, d in changed.items()]), "protocol.drf"
    if kind == "no manifest":
        return tar_with(path, [file_info(n, d) for n, d in members.items()]), MANIFEST
    if kind == "not an archive":
        path.write_bytes(b"\x1f\x8b garbage")
        return path, "not a readable"
    raise AssertionError(kind)


class ZeroReader(io.RawIOBase):
    def __init__(self, size):
        self.left = size

    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\0" * n


HOSTILE = ["traversal", "absolute", "symlink", "hardlink", "device", "pickle", "pickle as run.json", "gzip bomb",
           "zip bomb", "altered", "malformed record", "no manifest", "not an archive"]


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_bundles_are_refused_and_change_nothing(cli, lab, tmp_path, kind):
    results, out = lab
    outside = tmp_path / "hostile"
    outside.mkdir()
    bundle, fragment = hostile(kind, out, outside)
    target = tmp_path / "lab-b"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    before = snapshot(target)
    result = cli("merge", bundle, "--results", target)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.output
    assert snapshot(target) == before
    assert not (outside / "outside.txt").exists() and not (tmp_path / "outside.txt").exists()
    assert not [p for p in target.iterdir() if p.name.startswith(".merge-")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40))
def test_no_member_name_picks_a_path(tmp_path_factory, name):
    """Whatever a member is called, merge writes nothing outside the results folder; a name outside the
    bundle grammar refuses the bundle."""
    work = tmp_path_factory.mktemp("names")
    data = b"x"
    bundle = tar_with(work / "b.tar.gz", [file_info(MANIFEST, manifest_for({name: data})), file_info(name, data)])
    results = work / "results"
    before = sorted(p.as_posix() for p in work.rglob("*"))
    try:
        merge_bundle(bundle, results, log=lambda _: None)
    except UserError:
        pass
    after = sorted(p.as_posix() for p in work.rglob("*"))
    assert [p for p in after if p not in before and not p.startswith(str(results))] == []
    assert not [p for p in results.rglob("*") if p.is_file()]  # a lone file is never a valid run


def test_a_member_that_inflates_past_what_its_header_claims_is_cut_off():
    """A header may lie about the size (zip's file_size): the bytes are read up to the limit and no further."""
    asked = []

    class Counting(io.BytesIO):
        def read(self, n=-1):
            asked.append(n)
            return super().read(n)

    member = bundle_module.Member("run-1/run.json", "file", 10, lambda: Counting(b" " * 5000))
    with pytest.raises(UserError, match="inflates past"):
        bundle_module.read_limited(member, 4096, "bundle x")
    assert asked == [4097]  # never more than the limit and one byte


def test_export_takes_a_grids_finished_runs(cli, tmp_path):
    grid = tmp_path / "tiny-grid.toml"
    grid.write_text('name = "tiny-grid"\nmethods = ["lpet"]\ndataset = "tiny"\ndrf = 4\nseeds = [0, 1]\n'
                    'metrics = ["psnr"]\n[protocol]\nn_train = 2\nn_test = 2\nn_unpaired = 0\n')
    results = tmp_path / "res"
    ran = cli("grid", grid, "--results", results, "-q")
    assert ran.exit_code == 0, ran.output
    cli(*RUN, "--method", "lpet", "--results", results, "--n-test", "3")  # a run outside the grid
    out = tmp_path / "grid.tar.gz"
    exported = cli("export", "--results", results, "--grid", grid, "--out", out)
    assert exported.exit_code == 0, exported.output
    with tarfile.open(out) as archive:
        runs = {n.split("/")[0] for n in archive.getnames() if "/" in n}
    state = json.loads(next((results / ".grids").rglob("*.json")).read_text())
    assert runs == {cell["run_id"] for cell in state["cells"].values()} and len(runs) == 2
    unknown = cli("export", "--results", results, "--grid", "nope", "--out", out)
    assert unknown.exit_code == 2 and "--grid nope" in unknown.output
