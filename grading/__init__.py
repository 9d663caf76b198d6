"""Grading harness for the course (nbgrader 0.9 underneath). See grading/README in the tour."""
