# Grading expectations for unit 03-convolution, read by tests/conftest.py.
# WRONG: grade_id of a solution cell -> (a plausible mistake, the test cells that must fail).
# Pick functions no other exercise calls, so exactly those points are lost.

NOTEBOOK = "convolution.ipynb"

WRONG = {
    "conv_output_size": (
        "def conv_output_size(N, F, S=1, P=0):\n"
        "    # mistake: floors like torch instead of refusing a filter that doesn't fit\n"
        "    return (N - F + 2 * P) // S + 1\n",
        {"test_conv_output_size"},
    ),
    "conv_layer_params": (
        "def conv_layer_params(F, D_in, K, bias=True):\n"
        "    # mistake: forgets the biases (the slides' 750 instead of 760)\n"
        "    return F * F * D_in * K\n",
        {"test_conv_layer_params"},
    ),
    "convolve_via_correlate": (
        "def convolve_via_correlate(image, kernel):\n"
        "    # mistake: no flip, so this is the cross-correlation a conv layer computes\n"
        "    return conv.cross_correlate2d(image, kernel, mode='valid')\n",
        {"test_convolve_via_correlate"},
    ),
}
