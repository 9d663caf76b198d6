"""Data the notebooks use, all available offline.

Toy 2-D sets (generated from a seed, so nothing ships or downloads) for the clustering
units; real images and digits for the CNN units.

Files live in the repository's top-level ``data/`` folder (:data:`DATA_DIR`, found next to
this package: ``helpers`` is installed editable, and the grading sandbox binds ``data/``
read-only beside ``helpers/``). ``data/README.md`` lists every data set with its source,
licence, size and SHA-256, generated from ``data/MANIFEST.json``. The slides' worked
examples (:func:`slide_example`) and the two photographs (:func:`sample_image`) ship
there; CIFAR-10 goes to ``data/cifar-10-batches-py/`` (git-ignored) when you fetch it.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers._validation import check_choice, check_float, check_int

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
"""The repository's ``data/`` folder, where every file this module reads lives."""


def data_path(*parts) -> Path:
    """The path of a file under :data:`DATA_DIR`, checked to exist.

    Parameters
    ----------
    *parts : str
        Path components below ``data/``, e.g. ``("images", "china.jpg")``.

    Returns
    -------
    Path

    Raises
    ------
    FileNotFoundError
        When the file is not there; the message names the full path and why it may be
        missing (a copy of ``helpers`` installed without the repository beside it).

    Examples
    --------
    >>> data_path("slides", "max_pool.json").name
    'max_pool.json'
    """
    path = DATA_DIR.joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing. helpers.data reads the course's files from the repository's "
            f"data/ folder ({DATA_DIR}), found beside the helpers package: install helpers "
            f"from a clone with `pip install -e .` (`make lab` does) so that data/ is next to "
            f"it, and restore the file from git (data/README.md lists every file).")
    return path


SLIDE_EXAMPLES = ("alexnet", "conv_params", "max_pool", "output_size")


def slide_example(name: str) -> dict:
    """A worked example from the slides, as shipped in ``data/slides/<name>.json``.

    ======================  ===============================================================
    ``"max_pool"``          the 4x4 slice ``x``, ``size``, ``stride`` and its 2x2 max pool
                            ``y`` (unit 04)
    ``"output_size"``       ``examples``: ``N``, ``F``, ``stride``, ``pad`` and the
                            ``output`` size, None where the filter "doesn't fit" (unit 03)
    ``"conv_params"``       ``examples``: ``F``, ``D_in``, ``K``, ``bias`` and ``params``
                            (760, AlexNet's 35K) (unit 03)
    ``"alexnet"``           the printed AlexNet table: ``input`` and ``layers``, each with
                            ``name``, ``output`` ("55x55x96") and the ``slide`` text
                            (unit 06)
    ======================  ===============================================================

    Every example also has ``what``, ``source`` and ``unit``. Numeric 2-D lists (``x``,
    ``y``) come back as float64 arrays; everything else as JSON gives it.

    Parameters
    ----------
    name : {"alexnet", "conv_params", "max_pool", "output_size"}

    Returns
    -------
    dict

    Examples
    --------
    >>> ex = slide_example("max_pool")
    >>> ex["x"].shape, ex["y"].tolist()
    ((4, 4), [[6.0, 8.0], [3.0, 4.0]])
    """
    check_choice(name, "name", SLIDE_EXAMPLES)
    with open(data_path("slides", f"{name}.json"), encoding="utf-8") as f:
        example = json.load(f)
    for key in ("x", "y"):
        if key in example:
            example[key] = np.array(example[key], dtype=np.float64)
    return example


TOY_2D = ("blobs", "moons", "smiley", "uniform", "anisotropic", "density_bars", "rings", "blobs_noise")


def toy_2d(name: str = "blobs", n: int = 500, *, noise: float = 0.05, seed=None):
    """Return ``(X, y)``: ``n`` 2-D points of the toy set ``name`` and their true groups.

    Parameters
    ----------
    name : {"blobs", "moons", "smiley", "uniform", "anisotropic", "density_bars", "rings", "blobs_noise"}
        "blobs": three round Gaussian clusters (where K-Means shines);
        "moons": two interleaved half circles (where it fails, DBSCAN's classic);
        "smiley": a face of two eyes, a mouth and an outline (clusters of very different shapes);
        "uniform": no structure at all (K-Means still returns k clusters);
        "anisotropic": stretched Gaussian clusters (K-Means' round-cluster assumption breaks);
        "density_bars": three bars of decreasing density (hard for one eps);
        "rings": two concentric circles;
        "blobs_noise": blobs plus 10% uniform background noise (label -1).
    n : int
        Number of points (at least 10).
    noise : float
        Standard deviation of the jitter added to curve-shaped sets ("moons", "smiley", "rings").
    seed : int, numpy Generator or None
        The only source of randomness.

    Returns
    -------
    X : ndarray of shape (n, 2)
    y : ndarray of shape (n,) of int; the generating group, -1 for background noise.

    Examples
    --------
    >>> X, y = toy_2d("moons", n=100, seed=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((100, 2), [0, 1])
    """
    check_choice(name, "name", TOY_2D)
    n = check_int(n, "n", min_value=10)
    noise = check_float(noise, "noise", min_value=0.0)
    rng = np.random.default_rng(seed)
    X, y = _MAKERS[name](n, noise, rng)
    return X.astype(np.float64), y.astype(np.int64)


def _split(n, weights):
    """Split n into len(weights) integer parts proportional to weights, summing to n."""
    w = np.asarray(weights, dtype=float)
    parts = np.floor(n * w / w.sum()).astype(int)
    parts[: n - parts.sum()] += 1
    return parts


def _blobs(n, noise, rng):
    centers = np.array([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.2]])
    sizes = _split(n, [1, 1, 1])
    X = np.concatenate([c + 0.6 * rng.standard_normal((m, 2)) for c, m in zip(centers, sizes)])
    y = np.repeat(np.arange(3), sizes)
    return X, y


def _moons(n, noise, rng):
    n0, n1 = _split(n, [1, 1])
    t0 = rng.uniform(0, np.pi, n0)
    t1 = rng.uniform(0, np.pi, n1)
    upper = np.c_[np.cos(t0), np.sin(t0)]
    lower = np.c_[1 - np.cos(t1), 0.5 - np.sin(t1)]
    X = np.concatenate([upper, lower]) + noise * rng.standard_normal((n, 2))
    y = np.repeat([0, 1], [n0, n1])
    return X, y


def _smiley(n, noise, rng):
    n_face, n_eye1, n_eye2, n_mouth = _split(n, [4, 1, 1, 2])
    t = rng.uniform(0, 2 * np.pi, n_face)
    face = 2.0 * np.c_[np.cos(t), np.sin(t)]
    eye1 = np.array([-0.7, 0.6]) + 0.15 * rng.standard_normal((n_eye1, 2))
    eye2 = np.array([0.7, 0.6]) + 0.15 * rng.standard_normal((n_eye2, 2))
    s = rng.uniform(np.pi * 1.15, np.pi * 1.85, n_mouth)
    mouth = np.c_[1.1 * np.cos(s), 1.1 * np.sin(s) - 0.1]
    X = np.concatenate([face, eye1, eye2, mouth])
    X[: n_face] += noise * rng.standard_normal((n_face, 2))
    X[n - n_mouth:] += noise * rng.standard_normal((n_mouth, 2))
    y = np.repeat(np.arange(4), [n_face, n_eye1, n_eye2, n_mouth])
    return X, y


def _uniform(n, noise, rng):
    return rng.uniform(-2, 2, (n, 2)), np.zeros(n, dtype=int)


def _anisotropic(n, noise, rng):
    # Three parallel, stretched Gaussians: long along the diagonal, close side by side.
    sizes = _split(n, [1, 1, 1])
    along = np.array([1.0, 1.0]) / np.sqrt(2)
    across = np.array([-1.0, 1.0]) / np.sqrt(2)
    parts = []
    for offset, m in zip((-1.8, 0.0, 1.8), sizes):
        z = rng.standard_normal((m, 2))
        parts.append(offset * across + 2.0 * z[:, :1] * along + 0.3 * z[:, 1:] * across)
    return np.concatenate(parts), np.repeat(np.arange(3), sizes)


def _density_bars(n, noise, rng):
    sizes = _split(n, [6, 3, 1])
    parts = []
    for i, m in enumerate(sizes):
        x = rng.uniform(-0.4, 0.4, m) + (i - 1) * 1.6
        yy = rng.uniform(-1.5, 1.5, m)
        parts.append(np.c_[x, yy])
    return np.concatenate(parts), np.repeat(np.arange(3), sizes)


def _rings(n, noise, rng):
    n0, n1 = _split(n, [1, 2])
    t0 = rng.uniform(0, 2 * np.pi, n0)
    t1 = rng.uniform(0, 2 * np.pi, n1)
    X = np.concatenate([0.8 * np.c_[np.cos(t0), np.sin(t0)], 2.0 * np.c_[np.cos(t1), np.sin(t1)]])
    X += noise * rng.standard_normal((n, 2))
    return X, np.repeat([0, 1], [n0, n1])


def _blobs_noise(n, noise, rng):
    n_noise = max(1, n // 10)
    X, y = _blobs(n - n_noise, noise, rng)
    background = rng.uniform(-4, 4, (n_noise, 2))
    return np.concatenate([X, background]), np.concatenate([y, np.full(n_noise, -1)])


_MAKERS = {
    "blobs": _blobs,
    "moons": _moons,
    "smiley": _smiley,
    "uniform": _uniform,
    "anisotropic": _anisotropic,
    "density_bars": _density_bars,
    "rings": _rings,
    "blobs_noise": _blobs_noise,
}


# --------------------------------------------------------------------------------------
# Images for the CNN units: digits (default training set), CIFAR-10, sample photographs
# --------------------------------------------------------------------------------------

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # published on the CIFAR page
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
SAMPLE_IMAGES = ("china", "flower")


@dataclass(frozen=True)
class ImageSplit:
    """Images and labels split into a training and a test set.

    Attributes
    ----------
    X_train, X_test : ndarray of shape (N, C, H, W)
        Images, NCHW (torch's order), floats in [0, 1] unless asked for raw uint8.
    y_train, y_test : ndarray of shape (N,) of int64
        Class indices into ``classes``.
    classes : tuple of str
        Class names.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: tuple


def load_digits_images(*, test_size: float = 0.25, seed=0, dtype=np.float32) -> ImageSplit:
    """scikit-learn's handwritten digits as 8x8 grey images, split train/test by class.

    1,797 real images (UCI ML hand-written digits, 43 writers, shipped inside
    scikit-learn, so nothing downloads), ten classes of about 180 each. Pixel counts
    0..16 are scaled to [0, 1]. The split is stratified: each digit keeps the same share
    in both sets (``round(test_size * n_class)`` of each class go to the test set).

    Parameters
    ----------
    test_size : float
        Fraction of each class in the test set, in (0, 1).
    seed : int, numpy Generator or None
        Which images go to the test set; the same seed gives the same split.
    dtype : numpy float dtype
        float32 (default, what torch trains in) or float64.

    Returns
    -------
    ImageSplit
        ``X_train`` (N_train, 1, 8, 8), ``y_train``, ``X_test`` (N_test, 1, 8, 8),
        ``y_test``, ``classes`` = ("0", ..., "9").

    Examples
    --------
    >>> d = load_digits_images(seed=0)
    >>> d.X_train.shape, d.X_test.shape, float(d.X_train.max())
    ((1347, 1, 8, 8), (450, 1, 8, 8), 1.0)
    """
    from sklearn.datasets import load_digits

    test_size = check_float(test_size, "test_size", min_value=0.0, max_value=1.0,
                            min_inclusive=False, max_inclusive=False)
    dtype = _float_dtype(dtype)
    digits = load_digits()
    X = (digits.images / 16.0).astype(dtype)[:, None, :, :]
    y = digits.target.astype(np.int64)
    train, test = _stratified_split(y, test_size, np.random.default_rng(seed))
    return ImageSplit(X[train], y[train], X[test], y[test], tuple(str(c) for c in range(10)))


def load_cifar10(root=None, *, dtype=np.float32) -> ImageSplit:
    """CIFAR-10 from the standard python batches in a local folder (no download).

    Reads ``data_batch_1`` ... ``data_batch_5`` (50,000 training images), ``test_batch``
    (10,000) and ``batches.meta`` (class names) from ``root/cifar-10-batches-py/`` (or
    from ``root`` itself if the files are there). Each batch is a pickled dict with
    ``b"data"``, a uint8 array (n, 3072) whose rows hold the red, then green, then blue
    32x32 plane, and ``b"labels"``, n ints in 0..9. Pickle files can run code when
    loaded: only point this at the official archive.

    Parameters
    ----------
    root : str, Path or None
        Folder that contains ``cifar-10-batches-py/``; None (default): the repository's
        ``data/`` (:data:`DATA_DIR`). To get it (163 MB), download
        https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and unpack it there
        (``tar xzf cifar-10-python.tar.gz -C data``), or call :func:`download_cifar10`.
    dtype : numpy dtype
        float32 (default) or float64 scale the bytes to [0, 1] (the full set takes 737 MB
        in float32); uint8 returns the raw bytes (184 MB).

    Returns
    -------
    ImageSplit
        ``X_train`` (50000, 3, 32, 32), ``y_train`` (50000,), ``X_test`` (10000, 3, 32, 32),
        ``y_test`` (10000,), ``classes`` from ``batches.meta`` ("airplane", ..., "truck").

    Raises
    ------
    FileNotFoundError
        When a file is missing; the message names the folder and says how to get it.
    ValueError
        When a file is not in the CIFAR-10 python format.
    """
    dtype = np.dtype(dtype)
    if dtype != np.uint8 and dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be np.float32, np.float64 or np.uint8; got {dtype}")
    folder = _find_cifar10(root)
    X_train, y_train = zip(*(_read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)),
                           strict=True)
    X_test, y_test = _read_cifar_batch(folder / "test_batch")
    classes = _read_cifar_meta(folder / "batches.meta")

    def images(raw):
        X = raw.reshape(-1, 3, 32, 32)
        return X.copy() if dtype == np.uint8 else X.astype(dtype) / dtype.type(255)

    return ImageSplit(images(np.concatenate(X_train)), np.concatenate(y_train),
                      images(X_test), y_test, classes)


def download_cifar10(root=None, *, url: str = CIFAR10_URL, md5: str | None = CIFAR10_MD5,
                     force: bool = False, progress: bool = True) -> Path:
    """Download CIFAR-10's python archive, check its MD5 and unpack it into ``root``.

    Does nothing when ``root/cifar-10-batches-py/`` is already complete (unless
    ``force``). The archive is kept as ``root/cifar-10-python.tar.gz``, so a second call
    after deleting the folder only unpacks it. Nothing in the course calls this at run
    time; run it once, with a network, before class.

    Parameters
    ----------
    root : str, Path or None
        Folder to put the archive and the ``cifar-10-batches-py/`` folder in (created);
        None (default): the repository's ``data/`` (:data:`DATA_DIR`), whose contents
        git ignores.
    url : str
        Where to get the archive (any URL urllib opens, ``file://`` included).
    md5 : str or None
        Expected MD5 of the archive; ``None`` skips the check.
    force : bool
        Download and unpack again even if the folder is complete.
    progress : bool
        Show a progress bar (tqdm).

    Returns
    -------
    Path
        The ``cifar-10-batches-py`` folder, ready for :func:`load_cifar10`.

    Raises
    ------
    ValueError
        When the download's MD5 differs from ``md5`` (the file is deleted) or the archive
        does not contain the CIFAR-10 batches.
    """
    import tarfile

    root = DATA_DIR if root is None else Path(root).expanduser()
    folder = root / CIFAR10_FOLDER
    if not force and _missing(folder) == []:
        return folder
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "cifar-10-python.tar.gz"
    if force or not archive.exists() or (md5 is not None and _md5(archive) != md5):
        _fetch(url, archive, md5, progress)
    with tarfile.open(archive, "r:gz") as tar:
        _safe_extract(tar, root, archive)
    missing = _missing(folder)
    if missing:
        raise ValueError(f"the archive from {url} did not contain {CIFAR10_FOLDER}/ with "
                         f"{', '.join(missing)}; is it the CIFAR-10 python version?")
    return folder


def sample_image(name: str = "china", *, gray: bool = False, size=None,
                 dtype=np.float64) -> np.ndarray:
    """A real photograph from ``data/images/``, as floats in [0, 1].

    "china" (a temple in China) and "flower" (a flower close-up), both 427x640 JPEGs by
    Flickr users danielbuechele and vultilion under CC BY 2.0: scikit-learn's two sample
    images, byte for byte, shipped in the repository so that a student can open them
    (``data/README.md`` has their checksums). Reading them needs pillow.

    Parameters
    ----------
    name : {"china", "flower"}
        ("china.jpg" and "flower.jpg" work too.)
    gray : bool
        Return the luminance 0.299 R + 0.587 G + 0.114 B (ITU-R 601, as pillow's "L").
    size : (int, int) or None
        Resize to (height, width) first (Lanczos, in pillow): convolving a 427x640
        photograph with a loop in numpy takes a while, (107, 160) does not.
    dtype : numpy float dtype

    Returns
    -------
    ndarray of shape (H, W, 3), or (H, W) when ``gray``
        A picture, ready for ``plt.imshow``. For the NCHW layout of conv layers use
        ``img.transpose(2, 0, 1)[None]`` (colour) or ``img[None, None]`` (grey).

    Examples
    --------
    >>> sample_image("china").shape
    (427, 640, 3)
    >>> sample_image("flower", gray=True, size=(107, 160)).shape
    (107, 160)
    """
    from PIL import Image

    if isinstance(name, str) and name.endswith(".jpg"):
        name = name[: -len(".jpg")]
    check_choice(name, "name", SAMPLE_IMAGES)
    dtype = _float_dtype(dtype)
    with Image.open(data_path("images", f"{name}.jpg")) as photo:
        img = np.asarray(photo.convert("RGB"))
    if size is not None:
        h, w = _check_size(size)
        img = np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.LANCZOS))
    img = img.astype(np.float64) / 255.0
    if gray:
        img = img @ np.array([0.299, 0.587, 0.114])
    return img.astype(dtype)


def _stratified_split(y, test_size, rng):
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_size * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    # shuffle across classes so that a plain slice of the training set has every digit
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be np.float32 or np.float64; got {dtype}")
    return dtype


def _check_size(size):
    if (not isinstance(size, tuple | list) or len(size) != 2
            or any(isinstance(s, bool) for s in size)):
        raise ValueError(f"size must be (height, width) in pixels, e.g. (107, 160); got {size!r}")
    return tuple(check_int(s, "size", min_value=1) for s in size)


def _missing(folder: Path) -> list:
    return [f for f in CIFAR10_FILES if not (folder / f).is_file()]


def _find_cifar10(root) -> Path:
    root = DATA_DIR if root is None else Path(root).expanduser()
    for folder in (root / CIFAR10_FOLDER, root):
        if not _missing(folder):
            return folder
    folder = root / CIFAR10_FOLDER
    missing = _missing(folder)
    what = "is missing" if len(missing) == len(CIFAR10_FILES) else f"lacks {', '.join(missing)}"
    raise FileNotFoundError(
        f"CIFAR-10 not found: the folder {folder.resolve()} {what}. To get it (163 MB), "
        f"download {CIFAR10_URL} and unpack it into {root.resolve()} (e.g. `tar xzf "
        f"cifar-10-python.tar.gz -C {root}`), or run "
        f"helpers.data.download_cifar10({str(root)!r}) once with a network. "
        f"The notebooks train on load_digits_images() without it.")


def _read_cifar_batch(path: Path):
    batch = _unpickle(path)
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        raise ValueError(f"{path}: b'data' must be a uint8 array of shape (n, 3072), got "
                         f"{getattr(data, 'dtype', type(data).__name__)} "
                         f"{getattr(data, 'shape', '')}; is this a CIFAR-10 python batch?")
    labels = np.asarray(labels, dtype=np.int64) if labels is not None else None
    if labels is None or labels.shape != (data.shape[0],) \
            or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise ValueError(f"{path}: b'labels' must be {data.shape[0]} ints in 0..9")
    return data, labels


def _read_cifar_meta(path: Path) -> tuple:
    names = _unpickle(path).get(b"label_names")
    if not isinstance(names, list | tuple) or len(names) != 10:
        raise ValueError(f"{path}: b'label_names' must list the 10 class names")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise ValueError(f"{path} is not a CIFAR-10 python batch (unpickling failed: {exc})") \
            from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} is not a CIFAR-10 python batch (expected a dict, got "
                         f"{type(obj).__name__})")
    return obj


def _safe_extract(tar, root: Path, archive: Path):
    import tarfile

    if hasattr(tarfile, "data_filter"):
        try:
            tar.extractall(root, filter="data")  # refuses absolute paths, "../", links out
        except tarfile.FilterError as exc:
            raise ValueError(f"refusing to unpack {archive}: {exc}") from None
        return
    # Python < 3.11.4 has no filters: refuse anything but plain relative files and folders
    for member in tar.getmembers():
        if (member.name.startswith("/") or ".." in Path(member.name).parts
                or not (member.isfile() or member.isdir())):
            raise ValueError(f"refusing to unpack {archive}: unsafe member {member.name!r}")
    tar.extractall(root)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, dest: Path, md5, progress: bool):
    import urllib.request

    from tqdm.auto import tqdm

    part = dest.with_name(dest.name + ".part")
    h = hashlib.md5()
    with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                  disable=not progress) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
                h.update(chunk)
                bar.update(len(chunk))
    if md5 is not None and h.hexdigest() != md5:
        part.unlink()
        raise ValueError(f"download from {url} has MD5 {h.hexdigest()}, expected {md5}: "
                         "the file is corrupt or not the CIFAR-10 archive; deleted it")
    part.replace(dest)
