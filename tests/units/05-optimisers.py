# Grading expectations for unit 05-optimisers, read by tests/conftest.py.
# WRONG: grade_id of a solution cell -> (a plausible mistake, the test cells that must fail).
# Pick functions no other exercise calls, so exactly those points are lost.

NOTEBOOK = "optimisers.ipynb"

WRONG = {
    "adam": (
        "def adam(w, dw, config=None):\n"
        "    # mistake: no bias correction (m and v used as they are)\n"
        "    if config is None:\n"
        "        config = {}\n"
        "    config.setdefault('learning_rate', 1e-3)\n"
        "    config.setdefault('beta1', 0.9)\n"
        "    config.setdefault('beta2', 0.999)\n"
        "    config.setdefault('epsilon', 1e-8)\n"
        "    m = config['beta1'] * config.get('m', np.zeros_like(w)) + (1 - config['beta1']) * dw\n"
        "    v = config['beta2'] * config.get('v', np.zeros_like(w)) + (1 - config['beta2']) * dw**2\n"
        "    config.update(m=m, v=v, t=config.get('t', 0) + 1)\n"
        "    return w - config['learning_rate'] * m / (np.sqrt(v) + config['epsilon']), config\n",
        {"test_adam"},
    ),
    "lr_schedule": (
        "def lr_schedule(val_acc, lr=1e-2, factor=0.1, patience=2):\n"
        "    # mistake: drops when the count REACHES patience (one epoch too early)\n"
        "    best, bad_epochs, rates = -np.inf, 0, []\n"
        "    for acc in val_acc:\n"
        "        if acc > best:\n"
        "            best, bad_epochs = acc, 0\n"
        "        else:\n"
        "            bad_epochs += 1\n"
        "        if bad_epochs >= patience:\n"
        "            lr, bad_epochs = lr * factor, 0\n"
        "        rates.append(lr)\n"
        "    return np.array(rates)\n",
        {"test_lr_schedule"},
    ),
}
