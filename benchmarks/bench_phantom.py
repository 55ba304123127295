"""Benchmark ``phantom.generate_archive`` against writing the same files from zeros with pydicom.

In one run:

1. generate N studies with the phantom (render, compress, write DICOM,
   reports and ground truth) using W worker processes;
2. write, in one process, the same number of files with the same frame
   counts and matrix sizes, filled with zeros, uncompressed, each with a
   minimal MR header, through ``Dataset.save_as`` (the plain baseline).

Prints one JSON object: wall-clock and CPU seconds of both (CPU of the
phantom includes its workers), studies per second, the ratio of the
phantom's CPU time to the baseline's, archive size, and an extrapolation
to 200 studies.

Usage: python benchmarks/bench_phantom.py [--studies 20] [--seed 1] [--workers 1] [--domain standard] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from phantom import generate_archive, read_ground_truth

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def write_zeros(path: Path, rows: int, columns: int, frames: int) -> None:
    """Write one minimal uncompressed MR file with ``frames`` frames of zeros."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "MR"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = np.zeros((frames, rows, columns), np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def baseline(archive: Path, out: Path) -> tuple[float, float, int]:
    """Write zero-filled files with the archive's file and frame counts; return wall s, CPU s, files."""
    rows = read_ground_truth(archive)
    out.mkdir(parents=True)
    started, cpu = time.perf_counter(), cpu_seconds()
    files = 0
    for row in rows:
        shape = (row["parameters"]["rows"], row["parameters"]["columns"])
        for series in row["series"]:
            frames_per_file = series["slices"] * series["phases"] if series["files"] == 1 else 1
            for _ in range(series["files"]):
                write_zeros(out / f"{files:07d}.dcm", *shape, frames_per_file)
                files += 1
    return time.perf_counter() - started, cpu_seconds() - cpu, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--domain", default="standard")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder and print its path.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-phantom-"))
    try:
        cpu = cpu_seconds()
        summary = generate_archive(work / "archive", args.studies, args.seed, domain=args.domain, progress=False, workers=args.workers)
        phantom_cpu = cpu_seconds() - cpu
        baseline_wall, baseline_cpu, baseline_files = baseline(work / "archive", work / "zeros")
        result = {
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end",
            "studies": summary.studies,
            "series": summary.series,
            "files": summary.files,
            "archive_mb": round(summary.bytes / 1e6, 1),
            "mb_per_study": round(summary.bytes / 1e6 / summary.studies, 2),
            "phantom_wall_s": round(summary.seconds, 1),
            "phantom_cpu_s": round(phantom_cpu, 1),
            "phantom_cpu_s_per_study": round(phantom_cpu / summary.studies, 2),
            "phantom_studies_per_wall_s": round(summary.studies / summary.seconds, 3),
            "baseline_files": baseline_files,
            "baseline_wall_s": round(baseline_wall, 1),
            "baseline_cpu_s": round(baseline_cpu, 1),
            "cpu_ratio_phantom_to_baseline": round(phantom_cpu / max(baseline_cpu, 1e-9), 1),
            "estimated_200_study_cpu_min": round(200 * phantom_cpu / summary.studies / 60, 1),
            "estimated_200_study_gb": round(200 * summary.bytes / summary.studies / 1e9, 2),
            "workers": args.workers,
            "domain": args.domain,
        }
        print(json.dumps(result, indent=2))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
