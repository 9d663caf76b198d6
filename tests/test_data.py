"""helpers.data's image loaders against scikit-learn, pillow and the CIFAR-10 file format;
data/'s files against data/MANIFEST.json and data/README.md; the slides' worked examples
against torch.

CIFAR-10 is never downloaded here: the tests write a few batches in the exact format of
the official python archive (pickled dicts with b"data" uint8 (n, 3072) and b"labels")
and a small .tar.gz served through a file:// URL.
"""

import hashlib
import importlib.util
import io
import pickle
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits, load_sample_image

import helpers.data
from helpers.data import (
    CIFAR10_CLASSES,
    CIFAR10_MD5,
    CIFAR10_URL,
    DATA_DIR,
    SLIDE_EXAMPLES,
    ImageSplit,
    data_path,
    download_cifar10,
    load_cifar10,
    load_digits_images,
    sample_image,
    slide_example,
)

# ---------------------------------------------------------------------------- digits


def test_digits_are_sklearns_scaled_to_unit_range_and_split_once():
    d = load_digits_images(seed=0)
    ref = load_digits()
    assert isinstance(d, ImageSplit)
    assert d.X_train.shape == (1347, 1, 8, 8) and d.X_test.shape == (450, 1, 8, 8)
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.classes == tuple("0123456789")
    X = np.concatenate([d.X_train, d.X_test])
    y = np.concatenate([d.y_train, d.y_test])
    assert X.min() == 0.0 and X.max() == 1.0
    # every original (image, label) exactly once: compare sorted byte strings
    ours = sorted(np.round(x[0] * 16).astype(np.uint8).tobytes() + bytes([t]) for x, t in zip(X, y, strict=True))
    theirs = sorted(im.astype(np.uint8).tobytes() + bytes([t])
                    for im, t in zip(ref.images, ref.target, strict=True))
    assert ours == theirs


def test_digits_split_is_stratified_and_seeded():
    d = load_digits_images(test_size=0.2, seed=1, dtype=np.float64)
    counts = np.bincount(load_digits().target)
    assert d.X_test.dtype == np.float64
    np.testing.assert_array_equal(np.bincount(d.y_test), np.round(0.2 * counts).astype(int))
    np.testing.assert_array_equal(np.bincount(d.y_train) + np.bincount(d.y_test), counts)
    again = load_digits_images(test_size=0.2, seed=1, dtype=np.float64)
    np.testing.assert_array_equal(d.X_test, again.X_test)
    other = load_digits_images(test_size=0.2, seed=2, dtype=np.float64)
    assert not np.array_equal(d.X_test, other.X_test)
    # training set is shuffled across classes (a slice of 50 has several digits)
    assert len(set(d.y_train[:50].tolist())) > 5


def test_digits_bad_inputs():
    with pytest.raises(ValueError, match="test_size"):
        load_digits_images(test_size=1.0)
    with pytest.raises(ValueError, match="dtype"):
        load_digits_images(dtype=np.int32)


# ---------------------------------------------------------------------------- CIFAR-10


def _batch(n, seed):
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"training batch of a test",
        b"labels": rng.integers(0, 10, n).tolist(),
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{seed}_{i}.png".encode() for i in range(n)],
    }


def _write_cifar(folder, n=4, *, skip=(), override=None):
    folder.mkdir(parents=True, exist_ok=True)
    batches = {f"data_batch_{i}": _batch(n, i) for i in range(1, 6)}
    batches["test_batch"] = _batch(n + 1, 99)
    batches["batches.meta"] = {b"label_names": [c.encode() for c in CIFAR10_CLASSES],
                               b"num_cases_per_batch": n, b"num_vis": 3072}
    batches.update(override or {})
    for name, content in batches.items():
        if name not in skip:
            with open(folder / name, "wb") as f:
                pickle.dump(content, f, protocol=2)  # the archive's pickles are protocol 2
    return batches


def test_cifar10_reads_the_python_batches(tmp_path):
    batches = _write_cifar(tmp_path / "cifar-10-batches-py")
    data = load_cifar10(tmp_path)
    assert data.X_train.shape == (20, 3, 32, 32) and data.X_test.shape == (5, 3, 32, 32)
    assert data.X_train.dtype == np.float32 and data.classes == CIFAR10_CLASSES
    raw = batches["data_batch_2"][b"data"]
    # row layout: 1024 red values (row-major 32x32), then 1024 green, then 1024 blue
    i, h, w = 1, 5, 7
    for c in range(3):
        assert data.X_train[4 + i, c, h, w] == np.float32(raw[i, c * 1024 + h * 32 + w]) / 255
    np.testing.assert_array_equal(data.y_train[4:8], batches["data_batch_2"][b"labels"])
    np.testing.assert_array_equal(data.y_test, batches["test_batch"][b"labels"])
    assert data.X_train.min() >= 0 and data.X_train.max() <= 1


def test_cifar10_accepts_the_batches_folder_itself_and_raw_bytes(tmp_path):
    batches = _write_cifar(tmp_path)
    data = load_cifar10(str(tmp_path), dtype=np.uint8)
    assert data.X_test.dtype == np.uint8
    np.testing.assert_array_equal(data.X_test.reshape(5, 3072), batches["test_batch"][b"data"])


def test_cifar10_missing_says_where_and_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_cifar10(tmp_path / "nowhere")
    message = str(err.value)
    assert "cifar-10-batches-py" in message and str(tmp_path / "nowhere") in message
    assert CIFAR10_URL in message and "tar xzf" in message
    _write_cifar(tmp_path / "cifar-10-batches-py", skip=("data_batch_3", "batches.meta"))
    with pytest.raises(FileNotFoundError, match="data_batch_3, batches.meta"):
        load_cifar10(tmp_path)


def test_cifar10_wrong_format_is_a_clear_error(tmp_path):
    _write_cifar(tmp_path / "a", override={
        "data_batch_4": {b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}})
    with pytest.raises(ValueError, match="data_batch_4.*3072"):
        load_cifar10(tmp_path / "a")
    _write_cifar(tmp_path / "b", override={
        "test_batch": {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}})
    with pytest.raises(ValueError, match="test_batch.*labels"):
        load_cifar10(tmp_path / "b")
    _write_cifar(tmp_path / "c")
    (tmp_path / "c" / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_1"):
        load_cifar10(tmp_path / "c")
    with pytest.raises(ValueError, match="dtype"):
        load_cifar10(tmp_path / "c", dtype=np.int16)


def _tar_gz(tmp_path, source):
    archive = tmp_path / "served" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="cifar-10-batches-py")
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_download_cifar10_fetches_checks_and_unpacks(tmp_path):
    batches = _write_cifar(tmp_path / "src")
    archive, md5 = _tar_gz(tmp_path, tmp_path / "src")
    root = tmp_path / "root"
    folder = download_cifar10(root, url=archive.as_uri(), md5=md5, progress=False)
    assert folder == root / "cifar-10-batches-py"
    np.testing.assert_array_equal(load_cifar10(root, dtype=np.uint8).X_test.reshape(5, 3072),
                                  batches["test_batch"][b"data"])
    assert (root / "cifar-10-python.tar.gz").read_bytes() == archive.read_bytes()
    # complete already: no download at all (the URL does not exist)
    assert download_cifar10(root, url=(tmp_path / "gone.tgz").as_uri(), progress=False) == folder
    # folder deleted, archive kept: unpacked again without a download
    for f in folder.iterdir():
        f.unlink()
    assert download_cifar10(root, url=(tmp_path / "gone.tgz").as_uri(), md5=md5,
                            progress=False) == folder
    assert (folder / "test_batch").is_file()


def test_download_cifar10_refuses_a_bad_checksum(tmp_path):
    _write_cifar(tmp_path / "src")
    archive, md5 = _tar_gz(tmp_path, tmp_path / "src")
    root = tmp_path / "root"
    with pytest.raises(ValueError, match="MD5"):
        download_cifar10(root, url=archive.as_uri(), md5="0" * 32, progress=False)
    assert sorted(p.name for p in root.iterdir()) == []  # nothing kept, nothing unpacked


def test_download_cifar10_refuses_unsafe_archives_and_wrong_contents(tmp_path):
    evil = tmp_path / "served" / "evil.tar.gz"
    evil.parent.mkdir()
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(ValueError, match="unpack"):
        download_cifar10(tmp_path / "root", url=evil.as_uri(), md5=None, progress=False)
    assert not (tmp_path / "escaped.txt").exists()
    other = tmp_path / "served" / "other.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        info = tarfile.TarInfo("readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(ValueError, match="data_batch_1"):
        download_cifar10(tmp_path / "root2", url=other.as_uri(), md5=None, progress=False)


# ---------------------------------------------------------------------------- photographs


@pytest.mark.parametrize("name", ["china", "flower.jpg"])
def test_sample_image_is_sklearns_photo_as_floats(name):
    img = sample_image(name)
    ref = load_sample_image(name if name.endswith(".jpg") else name + ".jpg")
    assert img.shape == (427, 640, 3) and img.dtype == np.float64
    np.testing.assert_array_equal(img, ref / 255.0)


def test_sample_image_gray_and_resize_agree_with_pillow():
    gray = sample_image("china", gray=True, dtype=np.float32)
    pil = np.asarray(Image.fromarray(load_sample_image("china.jpg")).convert("L")) / 255.0
    assert gray.shape == (427, 640) and gray.dtype == np.float32
    np.testing.assert_allclose(gray, pil, atol=1 / 255 + 1e-6)
    small = sample_image("flower", size=(107, 160))
    ref = np.asarray(Image.fromarray(load_sample_image("flower.jpg"))
                     .resize((160, 107), Image.Resampling.LANCZOS)) / 255.0
    assert small.shape == (107, 160, 3)
    np.testing.assert_array_equal(small, ref)


def test_sample_image_bad_inputs():
    with pytest.raises(ValueError, match="name"):
        sample_image("lena")
    with pytest.raises(ValueError, match="size"):
        sample_image("china", size=100)
    with pytest.raises(ValueError, match="size"):
        sample_image("china", size=(0, 10))


def test_data_module_does_not_import_torch_or_sklearn():
    code = ("import sys, helpers, helpers.data; "
            "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- data/ folder


def _manifest_tool():
    spec = importlib.util.spec_from_file_location("data_manifest", DATA_DIR / "manifest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_data_dir_is_the_repository_folder_beside_helpers():
    repo = Path(__file__).resolve().parents[1]
    assert DATA_DIR == repo / "data"
    assert (DATA_DIR / "README.md").is_file() and (DATA_DIR / "MANIFEST.json").is_file()


def test_every_file_its_checksum_and_the_readme_table_agree_with_the_manifest():
    tool = _manifest_tool()
    assert tool.problems(tool.load()) == []


def test_manifest_check_catches_a_changed_file_and_an_unlisted_one(tmp_path, monkeypatch):
    tool = _manifest_tool()
    copy = tmp_path / "data"
    shutil.copytree(DATA_DIR, copy, ignore=shutil.ignore_patterns(*tool.IGNORED, "__pycache__"))
    monkeypatch.setattr(tool, "HERE", copy)
    monkeypatch.setattr(tool, "README", copy / "README.md")
    assert tool.problems(tool.load()) == []
    (copy / "slides" / "max_pool.json").write_text("{}")
    (copy / "slides" / "extra.json").write_text("{}")
    found = tool.problems(tool.load())
    assert any("slides/max_pool.json" in p and "SHA-256" in p for p in found)
    assert any("slides/extra.json is not listed" in p for p in found)


def test_digits_and_cifar_checksums_are_the_ones_the_code_uses():
    import sklearn

    manifest = _manifest_tool().load()
    elsewhere = {e["name"]: e for e in manifest["elsewhere"]}
    digits = elsewhere["UCI handwritten digits"]
    path = Path(sklearn.__file__).parent / digits["file"].removeprefix("sklearn/")
    assert path.stat().st_size == digits["bytes"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digits["sha256"]
    cifar = elsewhere["CIFAR-10 (optional)"]
    assert cifar["md5"] == CIFAR10_MD5 and CIFAR10_URL in cifar["where"]
    archive = DATA_DIR / cifar["file"]
    if archive.is_file():  # only where someone fetched it: never downloaded by the tests
        assert hashlib.sha256(archive.read_bytes()).hexdigest() == cifar["sha256"]


def test_shipped_photos_are_scikit_learns_byte_for_byte():
    import sklearn

    for name in ("china", "flower"):
        theirs = Path(sklearn.__file__).parent / "datasets" / "images" / f"{name}.jpg"
        assert data_path("images", f"{name}.jpg").read_bytes() == theirs.read_bytes()


def test_a_missing_file_names_its_path(tmp_path, monkeypatch):
    monkeypatch.setattr(helpers.data, "DATA_DIR", tmp_path / "data")
    with pytest.raises(FileNotFoundError) as err:
        sample_image("china")
    assert str(tmp_path / "data" / "images" / "china.jpg") in str(err.value)
    assert "pip install -e ." in str(err.value)
    with pytest.raises(FileNotFoundError, match="max_pool.json"):
        slide_example("max_pool")


def test_cifar10_defaults_to_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(helpers.data, "DATA_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "cifar-10-batches-py")):
        load_cifar10()
    _write_cifar(tmp_path / "cifar-10-batches-py")
    assert load_cifar10().X_train.shape == (20, 3, 32, 32)
    assert download_cifar10(progress=False) == tmp_path / "cifar-10-batches-py"  # complete


def test_slide_max_pool_example_equals_torch():
    import torch

    ex = slide_example("max_pool")
    assert ex["unit"] == "04-pooling" and ex["x"].shape == (4, 4)
    out = torch.nn.functional.max_pool2d(torch.from_numpy(ex["x"])[None, None], ex["size"],
                                         ex["stride"])
    np.testing.assert_array_equal(out[0, 0].numpy(), ex["y"])


def test_slide_output_sizes_equal_torch_conv2d():
    import torch

    for e in slide_example("output_size")["examples"]:
        N, F, S, P = e["N"], e["F"], e["stride"], e["pad"]
        out = torch.nn.functional.conv2d(torch.zeros(1, 1, N, N), torch.zeros(1, 1, F, F),
                                         stride=S, padding=P)
        fits = (N - F + 2 * P) % S == 0  # torch floors where the slides say "doesn't fit"
        assert e["output"] == (out.shape[-1] if fits else None), e


def test_slide_parameter_counts_equal_torch_conv2d():
    import torch

    for e in slide_example("conv_params")["examples"]:
        layer = torch.nn.Conv2d(e["D_in"], e["K"], e["F"], bias=e["bias"])
        assert sum(p.numel() for p in layer.parameters()) == e["params"], e


def test_slide_alexnet_table_equals_torch_alexnet():
    from helpers.models import alexnet, summary

    ex = slide_example("alexnet")
    W, H, D = (int(d) for d in ex["input"].split("x"))
    s = summary(alexnet(), (D, H, W))
    for layer in ex["layers"]:
        dims = [int(d) for d in layer["output"].split("x")]
        chw = (dims[2], dims[1], dims[0]) if len(dims) == 3 else tuple(dims)  # W x H x D
        assert s[layer["name"]].output_shape == chw, layer


def test_slide_example_bad_name():
    assert SLIDE_EXAMPLES == tuple(sorted(p.stem for p in (DATA_DIR / "slides").glob("*.json")))
    with pytest.raises(ValueError, match="name"):
        slide_example("lenet")
