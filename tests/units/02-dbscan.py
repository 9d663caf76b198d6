# Grading expectations for unit 02-dbscan, read by tests/conftest.py.
# WRONG: grade_id of a solution cell -> (a plausible mistake, the test cells that must fail).
# Pick functions no other exercise calls, so exactly those points are lost.

NOTEBOOK = "dbscan.ipynb"

WRONG = {
    "point_types": (
        "def point_types(X, eps, min_samples):\n"
        "    # mistake: the slide's 'more than MinPts' read literally (count > min_samples)\n"
        "    n = len(X)\n"
        "    neighbours = [region_query(X, i, eps) for i in range(n)]\n"
        "    core = np.array([len(nb) > min_samples for nb in neighbours])\n"
        "    types = np.array(['noise'] * n, dtype=object)\n"
        "    types[core] = 'core'\n"
        "    for i in np.flatnonzero(~core):\n"
        "        if core[neighbours[i]].any():\n"
        "            types[i] = 'border'\n"
        "    return types\n",
        {"test_point_types"},
    ),
    "my_dbscan": (
        "def my_dbscan(X, eps, min_samples):\n"
        "    # mistake: a border point is relabelled by every later cluster that reaches it\n"
        "    n = len(X)\n"
        "    labels = np.full(n, -1)\n"
        "    neighbours = [region_query(X, i, eps) for i in range(n)]\n"
        "    core = np.array([len(nb) >= min_samples for nb in neighbours])\n"
        "    cluster = 0\n"
        "    for start in range(n):\n"
        "        if labels[start] != -1 or not core[start]:\n"
        "            continue\n"
        "        labels[start] = cluster\n"
        "        to_visit = list(neighbours[start])\n"
        "        while to_visit:\n"
        "            j = to_visit.pop()\n"
        "            if labels[j] == cluster or (labels[j] != -1 and core[j]):\n"
        "                continue\n"
        "            labels[j] = cluster\n"
        "            if core[j]:\n"
        "                to_visit.extend(neighbours[j])\n"
        "        cluster += 1\n"
        "    return labels\n",
        {"test_my_dbscan"},
    ),
    "eps_chosen": (
        "# mistake: read off the flat part of the curve, far below the knee\n"
        "eps_chosen = 0.2\n",
        {"test_eps_chosen"},
    ),
}
