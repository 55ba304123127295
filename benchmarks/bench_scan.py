"""Benchmark the header scan of ``cmr-search index`` against a plain pydicom loop.

Builds a temporary archive of N copies of the Sunnybrook folder (1,408 files
each, 36 copies give 50,688 files). By default every copy gets its own
SOPInstanceUID, SeriesInstanceUID and StudyInstanceUID, rewritten in the file
bytes with values of the same length, so the catalog stores every copy. With
``--hardlink`` the copies are hard links that use no extra disk space, and
every copy after the first is a duplicate SOP instance.

Then, in one run and over the same files:

1. a single-process loop of ``pydicom.dcmread(path, stop_before_pixels=True)``,
2. ``cmr-search index ARCHIVE --workers W --json --skip-embedding`` into a
   fresh data folder (walk, header reads, catalog writes and assembly),
3. the same command again over the unchanged archive (no-op rerun).

The files are written just before the runs, so all three read from the page
cache. Prints one JSON object with wall-clock and CPU seconds (CPU of the
index runs includes their worker processes) and the ratios.

Usage: python benchmarks/bench_scan.py [--copies 36] [--workers 2] [--hardlink] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom import config as pydicom_config
from pydicom.errors import InvalidDicomError

from cmr_search.settings import sunnybrook_dir

UID_KEYWORDS = ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")


def copy_uid(uid: str, copy_index: int) -> str:
    """Return a UID of the same length that differs in its last five digits for each copy."""
    return uid[:-5] + f"{copy_index:05d}"


def source_files(source: Path) -> list[tuple[Path, bytes, dict[str, str]]]:
    """Read every file of ``source`` with its UIDs (empty for non-DICOM files)."""
    files = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        data = path.read_bytes()
        uids: dict[str, str] = {}
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            uids = {keyword: str(ds.get(keyword)) for keyword in UID_KEYWORDS if ds.get(keyword)}
        except InvalidDicomError:
            pass
        files.append((path.relative_to(source), data, uids))
    return files


def build_archive(source: Path, archive: Path, copies: int, hardlink: bool) -> int:
    """Write ``copies`` copies of ``source`` under ``archive``; return the number of files."""
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    files = source_files(source)
    originals = {uid for _, _, uids in files for uid in uids.values()}
    written = 0
    for copy_index in range(copies):
        root = archive / f"copy{copy_index:03d}"
        replaced = {uid: copy_uid(uid, copy_index) for uid in originals}
        if len(set(replaced.values())) != len(originals):
            raise SystemExit("UID rewriting would merge two distinct UIDs; use --hardlink")
        for relative, data, uids in files:
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if hardlink or not uids:
                os.link(source / relative, target) if hardlink else target.write_bytes(data)
            else:
                for uid in sorted(set(uids.values()), key=len, reverse=True):
                    data = data.replace(uid.encode(), replaced[uid].encode())
                target.write_bytes(data)
            written += 1
    return written


def plain_loop(archive: Path) -> tuple[float, float, int]:
    """Read every header in one process; return (wall seconds, CPU seconds, DICOM files read)."""
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    started, cpu_started = time.perf_counter(), time.process_time()
    read = 0
    for directory, _, names in os.walk(archive):
        for name in names:
            try:
                pydicom.dcmread(os.path.join(directory, name), stop_before_pixels=True)
                read += 1
            except InvalidDicomError:
                continue
    return time.perf_counter() - started, time.process_time() - cpu_started, read


def children_cpu_s() -> float:
    """User plus system CPU seconds of every finished child process, workers included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_index(archive: Path, data_dir: Path, workers: int) -> tuple[float, float, dict]:
    """Run ``cmr-search index`` as a subprocess; return (wall seconds, CPU seconds, JSON summary)."""
    executable = Path(sys.executable).parent / "cmr-search"
    command = [str(executable), "index", str(archive), "--data-dir", str(data_dir), "--workers", str(workers), "--json",
               "--skip-embedding"]
    started, cpu_started = time.perf_counter(), children_cpu_s()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, children_cpu_s() - cpu_started, json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=36, help="Copies of the Sunnybrook folder (1,408 files each).")
    parser.add_argument("--workers", type=int, default=2, help="Worker processes of cmr-search index.")
    parser.add_argument("--hardlink", action="store_true", help="Hard-link the copies instead of rewriting UIDs.")
    parser.add_argument("--workdir", type=Path, default=None, help="Folder for the archive and catalog [a new temp folder].")
    parser.add_argument("--keep", action="store_true", help="Keep the archive and catalog afterwards.")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cmr-bench-scan-"))
    archive, data_dir = workdir / "archive", workdir / "data"
    try:
        started = time.perf_counter()
        files = build_archive(sunnybrook_dir(), archive, args.copies, args.hardlink)
        build_seconds = time.perf_counter() - started

        load_before = os.getloadavg()
        loop_seconds, loop_cpu, loop_dicom = plain_loop(archive)
        index_seconds, index_cpu, first = run_index(archive, data_dir, args.workers)
        rerun_seconds, rerun_cpu, rerun = run_index(archive, data_dir, args.workers)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "files": files,
        "copies": args.copies,
        "distinct_uids": not args.hardlink,
        "archive_build_s": round(build_seconds, 1),
        "plain_loop_s": round(loop_seconds, 2),
        "plain_loop_cpu_s": round(loop_cpu, 2),
        "plain_loop_dicom_files": loop_dicom,
        "plain_loop_files_per_s": round(files / loop_seconds),
        "index_workers": args.workers,
        "index_s": round(index_seconds, 2),
        "index_cpu_s": round(index_cpu, 2),
        "index_files_per_s": round(files / index_seconds),
        "index_files_by_status": first["files_by_status"],
        "index_studies": first["studies"],
        "speedup_vs_plain_loop": round(loop_seconds / index_seconds, 2),
        "rerun_s": round(rerun_seconds, 2),
        "rerun_cpu_s": round(rerun_cpu, 2),
        "rerun_files_read": rerun["files_read"],
        "rerun_percent_of_first": round(100 * rerun_seconds / index_seconds, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
