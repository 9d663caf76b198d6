# Grading expectations for unit 01-kmeans, read by tests/conftest.py.
# WRONG: grade_id of a solution cell -> (a plausible mistake, the test cells that must fail).
# Pick functions no other exercise calls, so exactly those points are lost.

NOTEBOOK = "kmeans.ipynb"

WRONG = {
    "farthest_first": (
        "def farthest_first(X, k, first=0):\n"
        "    # mistake: the k first points, not the farthest ones\n"
        "    return X[first:first + k]\n",
        {"test_farthest_first"},
    ),
    "compute_inertia": (
        "def compute_inertia(X, centers, labels):\n"
        "    # mistake: distances, not squared distances\n"
        "    return float(np.sqrt(((X - centers[labels]) ** 2).sum(axis=1)).sum())\n",
        {"test_compute_inertia"},
    ),
}
