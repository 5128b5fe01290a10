"""Time the quick grid (docs/reproducing.md) and print every cell's time, phase by phase.

    python benchmarks/time_quick_grid.py                    # Table I, then Table II, into ./quick-timing
    python benchmarks/time_quick_grid.py --tables 1 --workers 2
    python benchmarks/time_quick_grid.py --report quick     # only the table of an existing results folder

Runs ``petbench grid table<N> --dataset phantom --preset quick --seeds 0 --drf 10`` (the default protocol,
128³, 30 paired, 20 test, 120 unpaired subjects) into a fresh results folder, so every cell trains, and
with the phantom cache of ``$PETBENCH_CACHE`` in place (it simulates the missing subjects first, untimed,
so the figure is the grid's own). Prints, per table: its wall time, the CPU time of its processes (user +
system, from ``getrusage``), the load average before and after, and per cell the phases recorded in its
``run.json`` (``timings``: each stage's training, evaluation, total). On a machine shared with other work
the wall time counts the time others held the cores; say so with any figure taken there.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

TARGETS_MIN = {1: 10.0, 2: 6.0}  # issue 28: on an idle 2-core machine, with the cache in place


def prepare_phantom() -> float:
    """Simulate what the default protocol needs (untimed by the grid); returns the seconds it took."""
    from petbench.data.protocol import Protocol, split_subjects
    from petbench.default_plugins.phantom import Phantom

    started = time.perf_counter()
    dataset = Phantom()
    splits = split_subjects("phantom", dataset.subject_ids(), Protocol())
    dataset.prepare(splits.test + splits.train, (10,))
    dataset.prepare(splits.unpaired, ())
    return time.perf_counter() - started


def run_table(table: int, results: Path, workers: str) -> dict:
    command = ["petbench", "grid", f"table{table}", "--dataset", "phantom", "--preset", "quick", "--seeds", "0",
               "--drf", "10", "--results", str(results), "--workers", workers, "--quiet"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()
    started = time.perf_counter()
    completed = subprocess.run(command)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"table": table, "command": " ".join(command), "returncode": completed.returncode, "wall_s": wall,
            "cpu_s": cpu, "load_before": load_before, "load_after": os.getloadavg()}


def cells(results: Path, table: int | None = None) -> list[dict]:
    rows = []
    for run_json in sorted(results.glob("**/run.json")):
        record = json.loads(run_json.read_text())
        timings = record.get("timings", {})
        stages = {s.get("name"): s for s in timings.get("stages", [])}
        rows.append({"method": record["method"]["name"], "status": record.get("status"),
                     "started": record.get("started_at") or record.get("created_at") or "",
                     "total_s": timings.get("total_s"), "train_s": timings.get("train_s"),
                     "evaluate_s": timings.get("evaluate_s"),
                     "stages": {name: (s.get("seconds") or s.get("train_s") or s.get("wall_s"),
                                       s.get("reused_from")) for name, s in stages.items()},
                     "psnr": record.get("summary", {}).get("psnr", {}).get("mean")})
    return rows


def seconds(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def print_cells(rows: list[dict]) -> None:
    print(f"{'cell':<18} {'status':<9} {'total s':>8} {'train s':>8} {'evaluate s':>10}  {'PSNR':>6}  stages (s)")
    for row in sorted(rows, key=lambda r: -(r["total_s"] or 0)):
        stages = ", ".join(f"{name} {'reused' if reused else seconds(s)}" for name, (s, reused) in row["stages"].items())
        psnr = "–" if row["psnr"] is None else f"{row['psnr']:.2f}"
        print(f"{row['method']:<18} {str(row['status']):<9} {seconds(row['total_s']):>8} {seconds(row['train_s']):>8} "
              f"{seconds(row['evaluate_s']):>10}  {psnr:>6}  {stages}")
    total = sum(r["total_s"] or 0 for r in rows)
    print(f"{'sum of cells':<18} {'':<9} {total:>8.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="1,2", help="which grids, in order (default 1,2: Table II reuses Table I)")
    parser.add_argument("--results", type=Path, default=Path("quick-timing"),
                        help="results folder; emptied first unless --keep")
    parser.add_argument("--workers", default="auto", help="petbench grid --workers (auto: 1 on a CPU)")
    parser.add_argument("--keep", action="store_true", help="do not empty --results (finished cells are skipped)")
    parser.add_argument("--report", type=Path, default=None, help="only print the cells of this results folder")
    args = parser.parse_args(argv)
    if args.report is not None:
        print_cells(cells(args.report))
        return 0
    if args.results.exists() and not args.keep:
        shutil.rmtree(args.results)
    print(f"phantom cache: {os.environ.get('PETBENCH_CACHE', '~/.cache/petbench')}; "
          f"simulating what is missing first (untimed): {prepare_phantom():.1f} s", flush=True)
    status = 0
    for table in (int(t) for t in args.tables.split(",")):
        seen = {run_json for run_json in args.results.glob("**/run.json")}
        result = run_table(table, args.results, args.workers)
        new = [row for row, path in zip(cells(args.results), sorted(args.results.glob("**/run.json")))
               if path not in seen]
        target = TARGETS_MIN.get(table)
        print(f"\nTable {table}: {result['wall_s'] / 60:.2f} min wall (target {target} min on an idle 2-core "
              f"machine), {result['cpu_s'] / 60:.2f} min CPU; load average before "
              f"{'/'.join(f'{x:.1f}' for x in result['load_before'])}, after "
              f"{'/'.join(f'{x:.1f}' for x in result['load_after'])}; exit {result['returncode']}")
        print(f"  {result['command']}")
        print_cells(new)
        status = status or result["returncode"]
    return status


if __name__ == "__main__":
    sys.exit(main())
