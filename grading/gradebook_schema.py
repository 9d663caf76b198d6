"""The gradebook schema's revision, without a process per new gradebook.

When nbgrader creates a gradebook (every new course, and every time a fresh database is
opened), ``nbgrader.api.get_alembic_version`` runs the ``alembic heads`` command line: a new
Python process that imports alembic, SQLAlchemy and nbgrader, ~3.5 CPU-seconds for a
12-character answer (and the reason the venv's ``bin/`` must be on PATH). ``install()``
answers the same question from nbgrader's own migration scripts in this process (alembic's
``ScriptDirectory``, ~0.15 s), and falls back to nbgrader's function when that cannot say
(not exactly one head, or any error). ``grading/nbgrader_config.py`` installs it for every
nbgrader run from ``grading/``; the harness for its own process.
"""

from __future__ import annotations

from functools import lru_cache


def alembic_head():
    """nbgrader's schema head revision from its migration scripts (None if not exactly one)."""
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    heads = ScriptDirectory(ALEMBIC_DIR).get_heads()
    return heads[0] if len(heads) == 1 else None


def install():
    """Make ``nbgrader.api.get_alembic_version`` answer in-process (once per process)."""
    import nbgrader.api as api

    if getattr(api.get_alembic_version, "in_process", False):
        return
    original = api.get_alembic_version

    @lru_cache(maxsize=1)
    def get_alembic_version():
        try:
            head = alembic_head()
        except Exception:  # noqa: BLE001 - nbgrader's own way still works
            head = None
        return head or original()

    get_alembic_version.in_process = True
    get_alembic_version.original = original
    api.get_alembic_version = get_alembic_version
