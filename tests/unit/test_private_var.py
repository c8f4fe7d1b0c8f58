"""var/ holds personal data (SQLite files, logs) and secrets: `linli up` keeps
it its owner's only, also what an older version left readable, and touches
nothing else in a folder given with --var. (A running stack: tests/e2e/test_least_privilege.py.)"""
import os
import stat

from services.ops.stack import Stack


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_linli_tightens_var_and_its_own_files_only(tmp_path):
    var = tmp_path / "var"
    (var / "log").mkdir(parents=True)
    left_readable = [var / "welfare.db", var / "welfare.db-wal", var / "jwt-secret", var / "log" / "welfare-0.log"]
    for path in left_readable + [var / "notes.txt"]:
        path.write_text("x" * 40)
        os.chmod(path, 0o644)
    os.chmod(var, 0o755)
    os.chmod(var / "log", 0o755)

    Stack(var, env={})

    assert mode(var) == mode(var / "log") == 0o700
    assert {path.name: mode(path) for path in left_readable} == {path.name: 0o600 for path in left_readable}
    assert mode(var / "notes.txt") == 0o644  # not Linli's


def test_a_new_var_and_its_token_secret_are_private_from_the_start(tmp_path, monkeypatch):
    monkeypatch.delenv("LINLI_JWT_SECRET", raising=False)
    previous = os.umask(0o022)
    try:
        stack = Stack(tmp_path / "var", env={})
    finally:
        os.umask(previous)
    assert mode(stack.var_dir) == mode(stack.var_dir / "log") == 0o700
    assert mode(stack.var_dir / "jwt-secret") == 0o600
