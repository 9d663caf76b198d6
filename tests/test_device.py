"""helpers.device and every `device=` parameter, without a GPU: torch.cuda is monkeypatched
to look like a machine with one GPU (or none), so the promised errors are checked here, on
the CPU. What a real GPU computes is checked in tests/test_cuda.py (marker `cuda`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.clustering import dbscan, kmeans
from helpers.conv import conv2d
from helpers.device import default_device, resolve_device, torch_dtype_for
from helpers.pool import avg_pool2d, max_pool2d, max_pool2d_backward


@pytest.fixture
def gpus(monkeypatch):
    """Pretend the machine has `n` CUDA GPUs (no tensor ever reaches one in these tests)."""

    def pretend(n):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)

    return pretend


def test_cuda_index_beyond_the_machine_raises(gpus):
    gpus(1)
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ValueError, match=r"device='cuda:7'.*1 CUDA GPU \(cuda:0 to cuda:0\)"):
        resolve_device("cuda:7")
    with pytest.raises(ValueError, match="device"):
        resolve_device(torch.device("cuda", 1))
    gpus(2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="2 CUDA GPUs"):
        resolve_device("cuda:2")


def test_no_cuda_at_all_raises(gpus):
    gpus(0)
    for device in ("cuda", "cuda:0", torch.device("cuda")):
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            resolve_device(device)


def test_bad_device_strings_name_the_parameter():
    for device in ("gpu", "cuda:x", 3.5):
        with pytest.raises(ValueError, match="device"):
            resolve_device(device)


def test_default_device_prefers_cuda(gpus):
    gpus(1)
    assert default_device().type == "cuda"
    assert resolve_device(None).type == "cuda"
    gpus(0)
    assert default_device().type in {"mps", "cpu"}


def test_one_dtype_rule():
    assert torch_dtype_for(torch.device("cpu")) == torch.float64
    assert torch_dtype_for(torch.device("cuda")) == torch.float32
    assert torch_dtype_for(torch.device("cuda", 3)) == torch.float32
    assert torch_dtype_for(torch.device("mps")) == torch.float32


def test_every_device_parameter_raises_before_any_work(gpus):
    # A wrong GPU index must be a clear ValueError from every public function that takes
    # `device=`, before any tensor is made (so no torch error from deep inside).
    gpus(1)
    X = np.random.default_rng(0).standard_normal((40, 2))
    x = np.ones((1, 1, 4, 4))
    w = np.ones((1, 1, 3, 3))
    calls = [
        lambda: kmeans(X, 2, seed=0, backend="torch", device="cuda:7"),
        lambda: dbscan(X, 0.5, 3, backend="torch", device="cuda:7"),
        lambda: conv2d(x, w, method="torch", device="cuda:7"),
        lambda: max_pool2d(x, method="torch", device="cuda:7"),
        lambda: avg_pool2d(x, method="torch", device="cuda:7"),
        lambda: max_pool2d_backward(np.ones((1, 1, 2, 2)), x, method="torch", device="cuda:7"),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="cuda:7"):
            call()


def test_train_and_predict_refuse_a_missing_gpu(gpus):
    from torch import nn

    from helpers.train import predict, train

    gpus(1)
    data = (np.zeros((4, 1, 2, 2), np.float32), np.arange(4) % 2,
            np.zeros((2, 1, 2, 2), np.float32), np.arange(2))
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="cuda:7"):
        train(net, data, epochs=1, device="cuda:7", progress=False)
    with pytest.raises(ValueError, match="cuda:7"):
        predict(net, data[0], device="cuda:7")


def test_numpy_methods_refuse_a_gpu_device():
    x = np.ones((1, 1, 4, 4))
    with pytest.raises(ValueError, match="device='cuda' needs method='torch'"):
        conv2d(x, np.ones((1, 1, 3, 3)), method="im2col", device="cuda")
    with pytest.raises(ValueError, match="device='cuda' needs method='torch'"):
        max_pool2d(x, device="cuda")
    with pytest.raises(ValueError, match="method"):
        avg_pool2d(x, method="cudnn")


def test_predict_moves_the_model_to_the_device_asked():
    from torch import nn

    from helpers.train import predict

    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).double()
    X = np.random.default_rng(0).standard_normal((5, 1, 2, 2))
    with torch.no_grad():
        want = net(torch.as_tensor(X)).argmax(1).numpy()
    np.testing.assert_array_equal(predict(net, X, device="cpu"), want)
    assert next(net.parameters()).device.type == "cpu"
