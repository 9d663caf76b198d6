"""nbgrader configuration for the course; the repository is the course root.

Run nbgrader from this folder (``cd grading && nbgrader ...``) or let ``make`` /
``python -m grading`` do it. Source notebooks live in ``solutions/``, the student release
in ``notebooks/``; everything an instructor collects and produces (submissions, autograded
copies, feedback, the gradebook) stays in the git-ignored ``grading/work/``.
"""

from pathlib import Path

GRADING = Path(__file__).resolve().parent
ROOT = GRADING.parent
WORK = GRADING / "work"
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
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
