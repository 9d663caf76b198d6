"""Late penalties that apply: a share of the score per started day late.

nbgrader's own plugin knows only "none" and "zero". ``PenaltyPerDay`` takes ``per_day`` of
the notebook's score for every started 24 hours past the due date (``per_day = 0.1``: 1 s to
24 h late costs 10 %, 24 h to 48 h 20 % ...), never more than the score. The due date is the
assignment's (``python -m grading grade --duedate "2026-12-01 17:00"``, or ``nbgrader db
assignment add A --duedate=...``); the submission time is nbgrader's ``timestamp.txt``,
which the harness writes from the LMS's time, or for an LMS ``LATE`` tag without a time,
as one second past the due date (one day's penalty).
"""

from __future__ import annotations

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float


class PenaltyPerDay(LateSubmissionPlugin):
    """``per_day`` of the score per started day late (see module docs)."""

    per_day = Float(0.1, min=0.0, max=1.0,
                    help="Share of the score lost per started day late.").tag(config=True)

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        if not total_seconds_late or total_seconds_late <= 0:
            return None
        days = math.ceil(total_seconds_late / 86400)
        return min(score, round(score * self.per_day * days, 6))
