"""Issue 16, a full disk (the CI-short version of `python -m benchmarks.reliability disk`): the
database's data directory and titlemap's file store on a small tmpfs, filled; an import from
the command line and through the web, and a file upload, each refused in one line with nothing
kept; once there is room, the same import runs whole. Mounting needs root: skipped otherwise."""

from types import SimpleNamespace

import pytest

from benchmarks.reliability import disk

WHY_NOT = disk.can_mount()


@pytest.mark.slow
@pytest.mark.skipif(WHY_NOT is not None, reason=f"a tmpfs cannot be mounted: {WHY_NOT}")
def test_a_full_disk_refuses_imports_and_uploads_in_one_line_and_keeps_nothing():
    args = SimpleNamespace(disk_mb=300, disk_compounds=150, disk_import=3000, headroom_mb=1.0)
    result = disk.run(args)
    assert result["free_mb_when_full"] < 2, result

    cli = result["cli_import"]
    assert cli["exit"] == 1 and not cli["traceback"], cli
    assert "磁盘已满" in cli["last_line"] or "No space left" in cli["last_line"], cli
    assert cli["unchanged"] and cli["answers_again_after_s"] is not None, cli

    web = result["web"]
    assert web["import"]["status"] in (422, 507), web["import"]
    assert "No space left" in web["import"]["detail"] or "磁盘已满" in web["import"]["detail"]
    assert web["upload"]["status"] == 507 and "磁盘已满" in web["upload"]["detail"], web["upload"]
    assert web["files_left"] == [] and web["tracebacks_in_log"] == 0, web
    assert web["unchanged"], web

    assert result["sessions_left"]["idle_in_transaction"] == 0, result["sessions_left"]
    assert result["sessions_left"]["writing"] == 0, result["sessions_left"]
    whole = result["then_whole"]  # the file was one it would import
    assert whole["exit"] == 0 and whole["compounds_added"] == 3000, whole
