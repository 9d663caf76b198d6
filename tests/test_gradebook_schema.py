"""grading/gradebook_schema.py: the gradebook's schema revision without the `alembic` command.

Checked against the real thing: nbgrader's own ``get_alembic_version`` (which runs ``alembic
heads``), and a gradebook nbgrader creates after the shim is installed.
"""

from __future__ import annotations

import sqlite3

import nbgrader.api as api

from grading import gradebook_schema


def test_the_in_process_revision_is_what_the_alembic_command_says(tmp_path):
    gradebook_schema.install()
    assert api.get_alembic_version.in_process
    from_the_command = api.get_alembic_version.original()   # runs `alembic heads`
    assert len(from_the_command) >= 12
    assert gradebook_schema.alembic_head() == from_the_command
    assert api.get_alembic_version() == from_the_command

    with api.Gradebook(f"sqlite:///{tmp_path / 'new.db'}") as gb:
        gb.add_student("alice")
    rows = sqlite3.connect(tmp_path / "new.db").execute(
        "SELECT version_num FROM alembic_version").fetchall()
    assert rows == [(from_the_command,)]


def test_installing_twice_keeps_one_shim():
    gradebook_schema.install()
    first = api.get_alembic_version
    gradebook_schema.install()
    assert api.get_alembic_version is first
