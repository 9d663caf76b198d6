# Grading expectations for unit 04-pooling, read by tests/conftest.py.
# WRONG: grade_id of a solution cell -> (a plausible mistake, the test cells that must fail).
# No exercise calls another one's function, so exactly those points are lost.

NOTEBOOK = "pooling.ipynb"

WRONG = {
    "pool_output_size": (
        "def pool_output_size(W, F, S):\n"
        "    # mistake: torch's floor formula, so a window that doesn't fit is never reported\n"
        "    return (W - F) // S + 1\n",
        {"test_pool_output_size"},
    ),
    "max_pool_forward": (
        "def max_pool_forward(x, F, S):\n"
        "    # mistake: the running maximum starts at 0, wrong where a window is all negative\n"
        "    N, C, H, W = x.shape\n"
        "    H2, W2 = (H - F) // S + 1, (W - F) // S + 1\n"
        "    out = np.zeros((N, C, H2, W2))\n"
        "    for i in range(H2):\n"
        "        for j in range(W2):\n"
        "            for p in range(F):\n"
        "                for q in range(F):\n"
        "                    out[:, :, i, j] = np.maximum(out[:, :, i, j], x[:, :, i * S + p, j * S + q])\n"
        "    return out\n",
        {"test_max_pool_forward"},
    ),
    "max_pool_backward": (
        "def max_pool_backward(dout, x, F, S):\n"
        "    # mistake: the mask x == max sends the gradient to EVERY tied maximum\n"
        "    N, C, H2, W2 = dout.shape\n"
        "    dx = np.zeros(x.shape)\n"
        "    for i in range(H2):\n"
        "        for j in range(W2):\n"
        "            window = x[:, :, i * S:i * S + F, j * S:j * S + F]\n"
        "            mask = window == window.max(axis=(2, 3), keepdims=True)\n"
        "            dx[:, :, i * S:i * S + F, j * S:j * S + F] += mask * dout[:, :, i:i + 1, j:j + 1]\n"
        "    return dx\n",
        {"test_max_pool_backward"},
    ),
    "avg_pool_forward": (
        "def avg_pool_forward(x, F, S):\n"
        "    # mistake: divides each window's sum by F instead of F*F\n"
        "    N, C, H, W = x.shape\n"
        "    H2, W2 = (H - F) // S + 1, (W - F) // S + 1\n"
        "    out = np.empty((N, C, H2, W2))\n"
        "    for i in range(H2):\n"
        "        for j in range(W2):\n"
        "            out[:, :, i, j] = x[:, :, i * S:i * S + F, j * S:j * S + F].sum(axis=(2, 3)) / F\n"
        "    return out\n",
        {"test_avg_pool_forward"},
    ),
}
