# Grading expectations for unit 06-case-study-cnns, read by tests/conftest.py.
# WRONG: grade_id of a solution cell -> (a plausible mistake, the test cells that must fail).
# Pick functions no other exercise calls, so exactly those points are lost.

NOTEBOOK = "case_study_cnns.ipynb"

WRONG = {
    "count_params": (
        "def count_params(layers, input_shape):\n"
        "    # mistake: weights only, the biases forgotten\n"
        "    incoming = [tuple(input_shape)] + shape_table(layers, input_shape)[:-1]\n"
        "    counts = []\n"
        "    for (H, W, C), layer in zip(incoming, layers):\n"
        "        if layer['kind'] == 'conv':\n"
        "            counts.append(layer['size'] * layer['size'] * C * layer['filters'])\n"
        "        elif layer['kind'] == 'fc':\n"
        "            counts.append(H * W * C * layer['units'])\n"
        "        else:\n"
        "            counts.append(0)\n"
        "    return counts\n",
        {"test_count_params"},
    ),
    "bottleneck_block": (
        "class BottleneckBlock(nn.Module):\n"
        "    # mistake: the stride on the 3x3 conv (torchvision's v1.5), not on the first 1x1\n"
        "    def __init__(self, in_channels, mid_channels, out_channels, stride=1):\n"
        "        super().__init__()\n"
        "        self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, bias=False)\n"
        "        self.bn1 = nn.BatchNorm2d(mid_channels)\n"
        "        self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, stride=stride, padding=1,\n"
        "                               bias=False)\n"
        "        self.bn2 = nn.BatchNorm2d(mid_channels)\n"
        "        self.conv3 = nn.Conv2d(mid_channels, out_channels, 1, bias=False)\n"
        "        self.bn3 = nn.BatchNorm2d(out_channels)\n"
        "        if stride == 1 and in_channels == out_channels:\n"
        "            self.shortcut = nn.Identity()\n"
        "        else:\n"
        "            self.shortcut = nn.Sequential(\n"
        "                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),\n"
        "                nn.BatchNorm2d(out_channels))\n"
        "\n"
        "    def forward(self, x):\n"
        "        out = F.relu(self.bn1(self.conv1(x)))\n"
        "        out = F.relu(self.bn2(self.conv2(out)))\n"
        "        out = self.bn3(self.conv3(out))\n"
        "        return F.relu(out + self.shortcut(x))\n",
        {"test_bottleneck_block"},
    ),
}
