"""Incremental and interrupted scans, bad files and the index command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

import indexer.assembly
import indexer.headers
import indexer.scan
import indexer.store
from cmr_search.cli import app
from cmr_search.settings import Settings
from indexer.catalog.models import Frame, Instance, ScanError, ScannedFile, Series, Study
from indexer.catalog.session import create_catalog_engine, session_factory
from indexer.scan import ScanConfigurationError, catalog_archive
from tests.dicom_factory import CineSpec, new_study_uid, write_bad_files, write_cine


def scan(settings: Settings, root: Path):  # type: ignore[no-untyped-def]
    return catalog_archive(settings, [root], workers=1, progress=False)


def count(settings: Settings, column) -> int:  # type: ignore[no-untyped-def]
    with session_factory(create_catalog_engine(settings.database_url))() as session:
        return session.scalar(select(func.count(column))) or 0


def test_bad_files_recorded_not_fatal(settings: Settings, tmp_path: Path) -> None:
    study = new_study_uid()
    write_cine(tmp_path / "archive" / "good", CineSpec(study_uid=study, slices=2, phases=3))
    bad = write_bad_files(tmp_path / "archive" / "bad", study)

    summary = scan(settings, tmp_path / "archive")

    assert summary.files_by_status == {"dicom": 6, "non_dicom": 2, "error": 3, "non_image": 1}
    assert summary.errors == 5
    with session_factory(create_catalog_engine(settings.database_url))() as session:
        reasons = {Path(path).name: (stage, reason) for path, stage, reason in session.execute(select(ScanError.path, ScanError.stage, ScanError.reason))}
    assert reasons[bad["truncated_pixels"].name][0] == "decode"
    assert "truncated file: PixelData has" in reasons[bad["truncated_pixels"].name][1]
    assert reasons[bad["missing_uid"].name] == ("header", "missing required tag StudyInstanceUID")
    assert reasons[bad["truncated_header"].name][0] == "read"
    assert reasons[bad["truncated_header"].name][1].startswith("truncated file: it ends after 300 bytes")
    assert bad["no_pixel_data"].name not in reasons
    assert reasons[bad["non_dicom_text"].name][0] == "read"
    assert summary.series_by_kind == {"cine": 1}


def test_rerun_reads_nothing(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cine(tmp_path / "archive", CineSpec(study_uid=new_study_uid()))
    scan(settings, tmp_path / "archive")

    def fail(*args: object) -> None:
        raise AssertionError("a header was read on an unchanged archive")

    monkeypatch.setattr(indexer.headers, "read_header", fail)
    rerun = scan(settings, tmp_path / "archive")

    assert rerun.files_read == 0
    assert rerun.files_unchanged == 24
    assert rerun.studies_assembled == 0


def test_new_and_changed_files_picked_up(settings: Settings, tmp_path: Path) -> None:
    study = new_study_uid()
    paths = write_cine(tmp_path / "archive" / "a", CineSpec(study_uid=study, slices=3, phases=4, skip={(2, 3)}))
    first = scan(settings, tmp_path / "archive")
    with session_factory(create_catalog_engine(settings.database_url))() as session:
        series_pk = session.scalars(select(Series.id)).one()
        assert not session.get(Series, series_pk).complete

    write_cine(tmp_path / "archive" / "b", CineSpec(study_uid=new_study_uid(), slices=1, phases=12, description="cine 4ch"))
    os.utime(paths[0], ns=(paths[0].stat().st_atime_ns, paths[0].stat().st_mtime_ns + 1_000_000_000))
    second = scan(settings, tmp_path / "archive")

    assert first.files_read == 11
    assert second.files_read == 13
    assert second.files_unchanged == 10
    assert second.studies == 2
    assert second.studies_assembled == 2
    assert count(settings, Instance.id) == 23
    with session_factory(create_catalog_engine(settings.database_url))() as session:
        assert session.get(Series, series_pk) is not None, "series ids stay stable across runs"
        assert session.scalar(select(func.count(Frame.id)).where(Frame.series_pk == series_pk)) == 11


def test_interrupted_store_resumes(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cine(tmp_path / "archive", CineSpec(study_uid=new_study_uid(), slices=5, phases=10))
    monkeypatch.setattr(indexer.scan, "BATCH_SIZE", 20)
    real_store = indexer.store.store_batch
    calls = []

    def store_then_die(*args):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_store(*args)

    monkeypatch.setattr(indexer.store, "store_batch", store_then_die)
    with pytest.raises(KeyboardInterrupt):
        scan(settings, tmp_path / "archive")
    assert count(settings, Instance.id) == 40
    assert count(settings, Series.id) == 0

    monkeypatch.setattr(indexer.store, "store_batch", real_store)
    resumed = scan(settings, tmp_path / "archive")

    assert resumed.files_read == 10
    assert count(settings, Instance.id) == 50
    assert count(settings, ScannedFile.id) == 50
    assert resumed.study_details[0].series[0].slices == 5
    assert resumed.study_details[0].series[0].complete


def test_interrupted_assembly_resumes(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cine(tmp_path / "archive", CineSpec(study_uid=new_study_uid(), slices=3, phases=12))

    def die(*args: object) -> None:
        raise KeyboardInterrupt

    real_assemble = indexer.assembly.assemble_study
    monkeypatch.setattr(indexer.assembly, "assemble_study", die)
    with pytest.raises(KeyboardInterrupt):
        scan(settings, tmp_path / "archive")
    monkeypatch.setattr(indexer.assembly, "assemble_study", real_assemble)

    resumed = scan(settings, tmp_path / "archive")

    assert resumed.files_read == 0
    assert resumed.studies_assembled == 1
    assert resumed.series_by_kind == {"cine": 1}
    with session_factory(create_catalog_engine(settings.database_url))() as session:
        assert not session.scalars(select(Study.needs_assembly)).one()


def test_missing_root_is_configuration_error(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ScanConfigurationError, match="archive path not found"):
        scan(settings, tmp_path / "nowhere")


def test_index_command_prints_json(tmp_path: Path) -> None:
    write_cine(tmp_path / "archive", CineSpec(study_uid=new_study_uid(), slices=3, phases=12))
    runner = CliRunner()

    result = runner.invoke(app, ["index", str(tmp_path / "archive"), "--data-dir", str(tmp_path / "data"), "--json", "--workers", "1", "--skip-embedding"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["studies"] == 1
    series = summary["studies_detail"][0]["series"][0]
    assert (series["kind"], series["view"], series["slices"], series["phases"], series["complete"]) == ("cine", "sax", 3, 12, True)
    assert (tmp_path / "data" / "catalog.sqlite").is_file()


def test_index_command_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("not DICOM")
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]

    nothing = runner.invoke(app, ["index", str(tmp_path / "texts"), *data, "--json"])
    missing = runner.invoke(app, ["index", str(tmp_path / "nowhere"), *data])

    assert nothing.exit_code == 1
    assert json.loads(nothing.stdout)["files_by_status"] == {"non_dicom": 1}
    assert missing.exit_code == 2


def test_errors_command_lists_reasons(tmp_path: Path) -> None:
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("not DICOM")
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    runner.invoke(app, ["index", str(tmp_path / "texts"), *data, "--json"])

    listed = runner.invoke(app, ["errors", *data, "--json"])

    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [row["path"] for row in rows] == [str((tmp_path / "texts" / "a.txt").resolve())]
    assert rows[0]["reason"]


def test_db_commands_upgrade_and_downgrade(tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"

    upgraded = runner.invoke(app, ["db", "upgrade", "--database-url", url])
    downgraded = runner.invoke(app, ["db", "downgrade", "base", "--database-url", url])

    assert upgraded.exit_code == 0, upgraded.output
    assert downgraded.exit_code == 0, downgraded.output


def test_deleted_files_counted_not_removed(settings: Settings, tmp_path: Path) -> None:
    paths = write_cine(tmp_path / "archive", CineSpec(study_uid=new_study_uid(), slices=2, phases=3))
    scan(settings, tmp_path / "archive")
    paths[0].unlink()

    rerun = scan(settings, tmp_path / "archive")

    assert rerun.files_missing == 1
    assert rerun.files_seen == 5
    assert count(settings, Instance.id) == 6


def test_sibling_folder_not_counted_missing(settings: Settings, tmp_path: Path) -> None:
    write_cine(tmp_path / "archive", CineSpec(study_uid=new_study_uid(), slices=1, phases=2))
    write_cine(tmp_path / "archive2", CineSpec(study_uid=new_study_uid(), slices=1, phases=3))
    scan(settings, tmp_path / "archive2")

    summary = scan(settings, tmp_path / "archive")

    assert summary.files_read == 2
    assert summary.files_missing == 0
    assert set(summary.seconds_by_phase) == {"walk", "headers", "assembly"}


def test_failed_assembly_recorded_and_retried(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cine(tmp_path / "archive", CineSpec(study_uid=new_study_uid(), slices=2, phases=12))

    def broken(*args: object) -> None:
        raise ValueError("grid cannot be built")

    real_assemble = indexer.assembly.assemble_study
    monkeypatch.setattr(indexer.assembly, "assemble_study", broken)
    failed = scan(settings, tmp_path / "archive")
    monkeypatch.setattr(indexer.assembly, "assemble_study", real_assemble)
    retried = scan(settings, tmp_path / "archive")

    assert failed.studies_assembled == 0
    assert failed.errors == 1
    with session_factory(create_catalog_engine(settings.database_url))() as session:
        stage, path, reason = session.execute(select(ScanError.stage, ScanError.path, ScanError.reason)).one()
    assert (stage, path) == ("assemble", "study 1")
    assert reason == "ValueError: grid cannot be built"
    assert retried.studies_assembled == 1
    assert retried.series_by_kind == {"cine": 1}


def test_unreachable_database_is_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    settings = Settings(data_dir=tmp_path / "data", database_url="postgresql+psycopg://nobody:secret@127.0.0.1:1/none")

    with pytest.raises(ScanConfigurationError, match="cannot open the catalog database") as raised:
        scan(settings, tmp_path / "archive")

    assert "secret" not in str(raised.value)


def test_failed_planning_in_worker_recorded(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "b"):
        write_cine(tmp_path / "archive" / name, CineSpec(study_uid=new_study_uid(), slices=1, phases=12))
    real_plan = indexer.assembly.plan_study

    def plan_all_but_first(session, study_pk):  # type: ignore[no-untyped-def]
        if study_pk == 1:
            raise ValueError("bad study")
        return real_plan(session, study_pk)

    monkeypatch.setattr(indexer.assembly, "plan_study", plan_all_but_first)  # forked workers inherit the patch
    summary = catalog_archive(settings, [tmp_path / "archive"], workers=2, progress=False)

    assert summary.studies_assembled == 1
    assert summary.errors == 1
    assert summary.series_by_kind == {"cine": 1}


def test_missing_patient_id_gives_one_patient_per_study(settings: Settings, tmp_path: Path) -> None:
    import pydicom

    from indexer.catalog.models import Patient

    prefix = "1.2.826.0.1.3680043.8.498.12345678901234567890123456789012345."
    for index in range(2):
        path = write_cine(tmp_path / "archive" / str(index), CineSpec(study_uid=f"{prefix}{index}", slices=1, phases=1))[0]
        ds = pydicom.dcmread(path)
        del ds.PatientID
        ds.save_as(path)

    summary = scan(settings, tmp_path / "archive")

    assert summary.studies == 2
    assert count(settings, Patient.id) == 2


def test_walk_order_and_undecodable_names(tmp_path: Path) -> None:
    from indexer.scan import walk_files

    for name in ("b/2.dcm", "b/1.dcm", "a/z.dcm", "c.dcm"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    os.close(os.open(os.path.join(os.fsencode(tmp_path), b"bad-\xff.dcm"), os.O_CREAT | os.O_WRONLY))

    paths = [Path(path).relative_to(tmp_path).as_posix() for path, _, _ in walk_files([tmp_path])]

    assert paths == ["c.dcm", "a/z.dcm", "b/1.dcm", "b/2.dcm"]


def test_head_revision_matches_alembic(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    from indexer.catalog.session import HEAD_REVISION, alembic_config

    scripts = ScriptDirectory.from_config(alembic_config(f"sqlite:///{tmp_path / 'catalog.sqlite'}"))

    assert scripts.get_current_head() == HEAD_REVISION


def test_upgrade_skips_alembic_at_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import alembic.command

    from indexer.catalog.session import HEAD_REVISION, catalog_revisions, downgrade_database, upgrade_database

    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    assert catalog_revisions(url) == []
    upgrade_database(url)
    assert catalog_revisions(url) == [HEAD_REVISION]

    def fail(*args: object) -> None:
        raise AssertionError("Alembic ran on a catalog already at head")

    real_upgrade = alembic.command.upgrade
    monkeypatch.setattr(alembic.command, "upgrade", fail)
    upgrade_database(url)

    monkeypatch.setattr(alembic.command, "upgrade", real_upgrade)
    downgrade_database(url, "base")
    assert catalog_revisions(url) == []
    upgrade_database(url)
    assert catalog_revisions(url) == [HEAD_REVISION]
