"""Checkers that notebook test cells and the unit tests share.

A checker takes the student's function, runs it on problems generated from seeds (the
visible test uses a few seeds, the hidden test others, with other shapes and edge cases),
and compares each answer with the reference in ``helpers``. A wrong answer raises an
``AssertionError`` whose message says which problem, what was expected and what came back,
so a student can act on it. Checkers print nothing and silence warnings, because nbgrader
scores any stderr output in a test cell as a failure.

One module per unit: ``helpers.checks.kmeans``, ...
"""
