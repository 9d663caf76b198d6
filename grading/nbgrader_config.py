"""nbgrader configuration for the course; the repository is the course root.

Run nbgrader from this folder (``cd grading && nbgrader ...``) or let ``make`` /
``python -m grading`` do it. Source notebooks live in ``solutions/``, the student release
in ``notebooks/``; everything an instructor collects and produces (submissions, autograded
copies, feedback, the gradebook) stays in the git-ignored ``grading/work/``.
"""

import re
import sys
from pathlib import Path

GRADING = Path(__file__).resolve().parent
ROOT = GRADING.parent
if str(ROOT) not in sys.path:  # the protections below live in the `grading` package
    sys.path.insert(0, str(ROOT))
WORK = GRADING / "work"

from grading.gradebook_schema import install as _fast_schema_revision  # noqa: E402

_fast_schema_revision()  # a new gradebook without an `alembic` process (~3.5 CPU-s)
WORK.mkdir(exist_ok=True)  # the gradebook lives here; sqlite will not create the folder

c = get_config()  # noqa: F821  (nbgrader injects get_config)

c.CourseDirectory.course_id = "day6-ai-workshop"
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "grading/work/submitted"
c.CourseDirectory.autograded_directory = "grading/work/autograded"
c.CourseDirectory.feedback_directory = "grading/work/feedback"
c.CourseDirectory.solution_directory = "grading/work/source_solutions"
c.CourseDirectory.db_url = f"sqlite:///{WORK / 'gradebook.db'}"
# Only notebooks are assignment content: helpers is an installed package, never a file
# beside the notebook (nbgrader would overwrite it with the instructor's copy anyway).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Hidden tests stay out of the release; a deleted test cell is put back at autograde.
c.ClearHiddenTests.enforce_metadata = True

# ---------------------------------------------------------------------------- protections
# Everything below also holds for a plain `nbgrader autograde` run from this folder.
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    OverwriteKernelspec,
    SaveAutoGrades,
)

from grading.execute import NOTEBOOK_TIMEOUT, GuardedExecute  # noqa: E402
from grading.verdicts import (  # noqa: E402
    Deduplicate,
    HideHiddenTests,
    InspectSubmission,
    RestoreCells,
    TrustedVerdicts,
)

# Sanitize: note what the student changed in the instructor's cells, then let nbgrader put
# the test cells (and deleted ones: add_missing_cells) back from the gradebook.
c.Autograde.sanitize_preprocessors = [
    ClearOutput, InspectSubmission, Deduplicate, OverwriteKernelspec, RestoreCells,
    CheckCellMetadata,
]
c.RestoreCells.add_missing_cells = True
# Autograde: run in the sandbox with limits (grading/sandbox.py, grading/execute.py), then
# judge every test cell again outside the kernel (grading/verdicts.py) before nbgrader saves
# the scores.
c.Autograde.autograde_preprocessors = [
    GuardedExecute, IgnorePattern, ClearMetadataPreprocessor, TrustedVerdicts, LimitOutput,
    SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
]
c.GuardedExecute.timeout = 120            # seconds per cell
c.GuardedExecute.notebook_timeout = NOTEBOOK_TIMEOUT   # seconds per notebook
c.GuardedExecute.interrupt_on_timeout = True
c.GuardedExecute.max_cell_output = 1_000_000      # characters of text per cell
c.GuardedExecute.max_notebook_output = 10_000_000
c.SandboxKernelManager.memory_mb = 6144   # address space per kernel process
c.SandboxKernelManager.max_processes = 128
c.LimitOutput.max_lines = 1000
# Feedback: the students' copy never shows hidden test code or the recorded answers.
c.GenerateFeedback.preprocessors = [HideHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]
# Late penalties: a share of the score per started day late (grading/late.py), from the
# assignment's due date (`python -m grading grade --duedate ...` or `nbgrader db assignment
# add A --duedate ...`) and each submission's timestamp.txt.
c.AssignLatePenalties.plugin_class = "grading.late.PenaltyPerDay"
c.PenaltyPerDay.per_day = 0.1

# `nbgrader zip_collect` (LMS downloads): files named <student>_<anything>_<notebook>.ipynb,
# where <notebook> is one of the course's notebook names (underscores and all, e.g.
# case_study_cnns.ipynb). The regexp is matched against the full path of each extracted file.
# `python -m grading grade` parses more layouts (Canvas, Moodle, Blackboard, rosters) and
# lists every file it cannot place; prefer it.
_NOTEBOOKS = sorted({p.stem for p in (ROOT / "solutions").glob("*/*.ipynb")}, key=len,
                    reverse=True)
c.FileNameCollectorPlugin.named_regexp = (
    r".*/(?P<student_id>[A-Za-z0-9.\-]+)_(?:[^/]*_)?(?P<file_id>(?:"
    + "|".join(re.escape(n) for n in _NOTEBOOKS) + r")\.ipynb)$"
)

# A kernel that imports another checkout's helpers than this one would be judged by other
# checkers than it ran: refuse to autograde rather than grade wrongly (the batch harness's
# canary says the same, before anything is graded).
if "autograde" in sys.argv[1:2] or "validate" in sys.argv[1:2]:
    from grading.harness import diagnose  # noqa: E402

    _causes = diagnose(None)
    if _causes:
        raise SystemExit("nbgrader_config.py: REFUSING TO GRADE: " + " ".join(_causes))

# ---------------------------------------------------------------------------- feedback HTML
# Students open feedback offline: show the PNG each explorer also offers rather than its
# live view (which needs a widget manager from a CDN). Same priority as `make` installs
# for plain `jupyter nbconvert` (etc/jupyter/jupyter_nbconvert_config.json).
import json  # noqa: E402

c.NbConvertBase.display_data_priority = json.loads(
    (ROOT / "etc" / "jupyter" / "jupyter_nbconvert_config.json").read_text()
)["NbConvertBase"]["display_data_priority"]
