"""The dataset registry: offline samples, torchvision downloads and folders on disk.

Every image dataset loads into one shape, ImageData: uint8 tensors (N, 3, S, S) for a
train and a validation split, drawn per class with a seed, so that "5 examples per class"
means the same thing for every source. Small sets then live on the device whole and
batches are index slices (see tlcore.train.image_batches).

Each entry is tagged with its similarity to each pretraining source ("imagenet" for
torchvision's weights, "synthetic" for the studio's own backbone) and a one-line reason:
that tag is the similarity axis of the strategy matrix.

Not for: augmentation or batching (tlcore.train.image_batches), text data (tlcore.text, which registers its own).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from tlcore.core import offline, settings
from tlcore.core.bounded import LRU, tensor_bytes
from tlcore.data.images import IMAGE_SUFFIXES

CACHE_DIR = offline.DATA_CACHE


class DatasetUnavailable(RuntimeError):
    """A download set is not cached and cannot be fetched; the message says what to do."""


class SplitData(Protocol):
    """What every dataset loader returns (ImageData here, tlcore.text.sentences.TextData): class
    names and labelled train and validation splits, drawn per class with a seed."""

    classes: list[str]
    train_y: torch.Tensor  # (N,) int64
    val_y: torch.Tensor  # (M,) int64
    skipped: list[tuple[str, str]]  # (file or row, why) left out

    @property
    def num_classes(self) -> int: ...


class DatasetLoader(Protocol):
    """A registered dataset's `load`: every loader is called with the same keywords and takes
    what it needs (`**_` swallows the rest: digits have no folder, sentences no image size)."""

    def __call__(self, *, per_class: int, val_per_class: int, image_size: int, seed: int, root: str) -> SplitData: ...


@dataclass
class ImageData:
    classes: list[str]
    train_x: torch.Tensor  # (N, 3, S, S) uint8
    train_y: torch.Tensor  # (N,) int64
    val_x: torch.Tensor
    val_y: torch.Tensor
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why) left out

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    task: str  # "image" or "text"
    kind: str  # "offline", "torchvision", "folder", "csv"
    similarity: dict  # pretraining source -> "similar" | "different"
    reason_en: str
    reason_ko: str
    load: DatasetLoader  # keyword-only (per_class, val_per_class, image_size, seed, root) -> data
    max_per_class: int = 0  # 0 = no known limit


# Loaded datasets kept for reuse (a race loads its data once), bounded by the bytes their tensors
# hold rather than by a count: eight large datasets would not fit a class server. The newest is
# kept even when it alone is over the bound.
_data_cache: LRU[tuple, object] = LRU("TLS_DATA_CACHE_BYTES", weigh=tensor_bytes, keep_newest=True)


def load(spec: DatasetSpec, *, per_class: int, image_size: int, seed: int = 0, val_per_class: int = 30, root: str = ""):
    """Load a dataset; repeated identical calls (a strategy race) reuse one copy."""
    if per_class < 1 or val_per_class < 1:
        raise ValueError("examples per class and validation examples per class must be at least 1")
    root = str(root or "")
    key = (spec.name, per_class, val_per_class, image_size, seed, root)
    data = _data_cache.get(key)
    if data is None:
        data = spec.load(per_class=per_class, val_per_class=val_per_class, image_size=image_size, seed=seed, root=root)
        _data_cache.put(key, data)
    return data


# ----------------------------------------------------------------------------- shared pieces


def split_per_class(
    labels: np.ndarray, per_class: int, val_per_class: int, seed: int, name: str = "dataset"
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded indices: val_per_class of each class held out first, then up to per_class for training.

    Validation is taken first so that changing the training size never changes the test.
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        if len(idx) < val_per_class + 1:
            raise ValueError(
                f"{name}: class {c} has only {len(idx)} examples; lower the validation size "
                f"(val_per_class={val_per_class}) so that at least one is left for training"
            )
        val.extend(idx[:val_per_class])
        train.extend(idx[val_per_class : val_per_class + per_class])
    return np.array(train), np.array(val)


def resize_batch(x: torch.Tensor, size: int, chunk: int = 256) -> torch.Tensor:
    """(N, C, h, w) uint8 or float -> (N, 3, size, size) uint8, bilinear with antialiasing.

    uint8 images already at the size pass through untouched (no float copy); others are
    converted `chunk` images at a time, so memory stays near the uint8 result's size."""
    if x.dtype == torch.uint8 and x.shape[-2:] == (size, size):
        return x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x
    out = torch.empty((len(x), 3, size, size), dtype=torch.uint8)
    for i in range(0, len(x), chunk):
        part = x[i : i + chunk].float()
        if part.shape[1] == 1:
            part = part.expand(-1, 3, -1, -1)
        if part.shape[-2:] != (size, size):
            part = torch.nn.functional.interpolate(part, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[i : i + chunk] = part.round().clamp_(0, 255).to(torch.uint8)
    return out


def from_arrays(
    classes, x: torch.Tensor, y: np.ndarray, *, per_class, val_per_class, image_size, seed, name="dataset"
) -> ImageData:
    """Split (N, C, h, w) images with labels y into an ImageData at the requested size."""
    tr, va = split_per_class(np.asarray(y), per_class, val_per_class, seed, name)
    check_decoded_bytes(len(tr) + len(va), image_size)
    y = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    return ImageData(list(classes), resize_batch(x[tr], image_size), y[tr], resize_batch(x[va], image_size), y[va])


def pil_to_uint8(img, size: int) -> torch.Tensor:
    """A PIL image -> (3, size, size) uint8: RGB, centre-cropped to a square, resized
    (tlcore.data.images.to_uint8: 16-bit images scaled, JPEGs decoded reduced)."""
    from tlcore.data.images import to_uint8

    return to_uint8(img, size)


# Decoded images of one dataset (N x 3 x S x S bytes) above this are refused before any
# decoding or drawing, whatever the source: a small zip of many tiny images, or Fashion-MNIST
# at 6,000 per class and 224 px (9 GB), must not fill a shared server's memory.
def max_decoded_bytes() -> int:
    """Decoded images one dataset may hold ($TLS_MAX_DATASET_BYTES, 1 GiB)."""
    return settings.get("TLS_MAX_DATASET_BYTES")


def check_decoded_bytes(images: int, image_size: int) -> None:
    """Refuse, before anything is decoded, a dataset whose uint8 images would pass max_decoded_bytes()."""
    from tlcore.core.messages import LearnerError

    need = images * 3 * image_size * image_size
    limit = max_decoded_bytes()
    if need > limit:
        raise LearnerError(
            "data.too_big",
            images=f"{images:,}",
            size=image_size,
            gib=f"{need / 1024**3:.1f}",
            limit=f"{limit / 1024**3:.1f}",
        )


def decode_files(
    files_by_class: dict[str, list], *, image_size: int, open_file=None, max_pixels: int | None = None
) -> tuple[list[str], torch.Tensor, np.ndarray, list[tuple[str, str]]]:
    """Decode image files grouped by class: (classes, x (N,3,S,S) uint8, labels, skipped).

    The one decoder for image folders and uploaded zips (tlcore.data.image_zip extracts a zip's
    checked files into a folder and comes here). files_by_class: class name -> paths (or names
    that `open_file` opens as a binary file). Corrupt and non-image files are listed in
    `skipped` with the reason; check_classes then says whether what is left can train.
    """
    from tlcore.core.messages import Reason
    from tlcore.data.images import MAX_PIXELS, ImageRefused, decode

    open_file = open_file or (lambda p: open(p, "rb"))
    labels, skipped, classes = [], [], sorted(files_by_class)
    candidates = sum(1 for files in files_by_class.values() for f in files if Path(str(f)).suffix.lower() in IMAGE_SUFFIXES)
    check_decoded_bytes(candidates, image_size)
    out = torch.empty((candidates, 3, image_size, image_size), dtype=torch.uint8)
    for label, cls in enumerate(classes):
        for f in sorted(files_by_class[cls], key=str):
            if Path(str(f)).suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append((str(f), Reason("skip.not_image")))
                continue
            try:
                with open_file(f) as fh:  # into one preallocated uint8 block
                    out[len(labels)] = decode(fh, image_size, max_pixels=max_pixels or MAX_PIXELS)
            except (ImageRefused, OSError) as e:
                skipped.append(
                    (str(f), e.reason if isinstance(e, ImageRefused) else Reason("skip.unreadable", error=type(e).__name__))
                )
                continue
            labels.append(label)
    return classes, out[: len(labels)], np.array(labels, dtype=np.int64), skipped


def check_class_count(n: int, cap: int, name: str) -> None:
    """Refuse a dataset with more than `cap` classes, before anything is decoded or trained
    (the class's limit, tlcore.serve.class_limits.ClassLimits.max_classes: a results page grows with its square)."""
    from tlcore.core.messages import LearnerError

    if n > cap:
        raise LearnerError("caps.classes", name=name, n=n, cap=cap)


def check_classes(classes: list[str], counts: np.ndarray, hint: str = "") -> None:
    """Can these classes train? Two classes or more, each with two usable images or more (one
    to train, one to test); otherwise a LearnerError that says what to change."""
    from tlcore.core.messages import LearnerError

    if not classes:
        raise LearnerError("upload.no_classes", hint=hint)
    if len(classes) == 1:
        raise LearnerError("upload.one_class", name=classes[0])
    empty = [c for c, n in zip(classes, counts) if n == 0]
    if empty:
        raise LearnerError("upload.empty_classes", names=", ".join(empty), hint=hint)
    too_few = [c for c, n in zip(classes, counts) if n < 2]
    if too_few:
        raise LearnerError("upload.one_image", names=", ".join(too_few))


def images_from_files(
    files_by_class: dict[str, list],
    *,
    per_class: int | None,
    val_per_class: int | None,
    image_size: int,
    seed: int,
    open_file=None,
    max_pixels: int | None = None,
) -> ImageData:
    """Decode image files grouped by class (decode_files), check the classes, and split them
    with the one split rule (split_per_class): validation first, so the training size never
    changes the test. val_per_class None: about a fifth of the smallest class; per_class None: all."""
    if len(files_by_class) < 2:  # refused before decoding anything
        check_classes(sorted(files_by_class), np.array([len(files_by_class[c]) for c in sorted(files_by_class)]))
    classes, x, labels, skipped = decode_files(files_by_class, image_size=image_size, open_file=open_file, max_pixels=max_pixels)
    counts = np.bincount(labels, minlength=len(classes))
    try:
        check_classes(classes, counts)
    except ValueError as error:
        error.skipped = skipped  # the files that left a class short, for the caller to name
        raise
    smallest = int(counts.min())
    val = max(1, smallest // 5) if val_per_class is None else val_per_class
    val = min(val, smallest - 1)  # always leave one image of each class to train on
    data = from_arrays(
        classes, x, labels, per_class=per_class or len(labels), val_per_class=val, image_size=image_size, seed=seed
    )
    data.skipped = skipped
    return data


def folder_files(root) -> dict[str, list[Path]]:
    """class name -> files, for a folder with one sub-folder per class (hidden entries ignored)."""
    root = Path(root or "")
    if not str(root) or not root.is_dir():
        raise ValueError(f"dataset folder {str(root)!r} does not exist; give a folder with one sub-folder per class")
    # Hidden at any depth (.cats/, cats/.thumbs/x.png, ._x.png from macOS) is skipped, as the
    # upload check skips it: what the check counted is what the run reads.
    return {
        d.name: [p for p in sorted(d.rglob("*")) if p.is_file() and not _hidden(p.relative_to(d))]
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def load_folder(*, per_class, val_per_class, image_size, seed, root) -> ImageData:
    """An image folder on disk: one sub-folder per class (ImageFolder layout)."""
    return images_from_files(
        folder_files(root), per_class=per_class, val_per_class=val_per_class, image_size=image_size, seed=seed
    )


# ----------------------------------------------------------------------------- offline sets


def load_digits_arrays() -> tuple[torch.Tensor, np.ndarray]:
    """scikit-learn's 1,797 real handwritten digits (8x8, 0..16), shipped inside the package."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) * (255.0 / 16.0)).unsqueeze(1)  # (N, 1, 8, 8)
    return x, d.target


def load_digits(*, per_class, val_per_class, image_size, seed, **_) -> ImageData:
    x, y = load_digits_arrays()
    return from_arrays(
        [str(i) for i in range(10)],
        x,
        y,
        per_class=per_class,
        val_per_class=val_per_class,
        image_size=image_size,
        seed=seed,
        name="digits",
    )


def _procedural(fn_name: str):
    def load(*, per_class, val_per_class, image_size, seed, **_) -> ImageData:
        from tlcore.data import procedural

        check_decoded_bytes(10 * (per_class + val_per_class), image_size)  # both procedural sets have 10 classes
        classes, tx, ty, vx, vy = getattr(procedural, fn_name)(
            per_class=per_class, val_per_class=val_per_class, image_size=image_size, seed=seed
        )
        return ImageData(list(classes), tx, ty, vx, vy)

    return load


# ----------------------------------------------------------------------------- torchvision sets


def _torchvision(cls_name: str, split_kw: dict, classes_attr: str = "classes"):
    """A torchvision dataset: downloaded on demand into CACHE_DIR, then sampled per class."""

    def load(*, per_class, val_per_class, image_size, seed, root=""):
        import torchvision.datasets as tvd

        base = Path(root) if root else CACHE_DIR / cls_name.lower()
        cls = getattr(tvd, cls_name)
        try:
            ds = cls(str(base), download=False, **split_kw)
        except (RuntimeError, FileNotFoundError):
            url = "https://download.pytorch.org" if cls_name != "CIFAR10" else "https://www.cs.toronto.edu"
            if not offline.reachable(url):
                raise DatasetUnavailable(
                    f"{cls_name} is not downloaded and this machine is offline: run `python -m tlcore prefetch "
                    f"--datasets {cls_name.lower()}` when online, or pick an offline dataset (digits, synthetic_novel)"
                ) from None
            ds = cls(str(base), download=True, **split_kw)
        labels = np.array(_labels_of(ds))
        tr, va = split_per_class(labels, per_class, val_per_class, seed, cls_name)
        check_decoded_bytes(len(tr) + len(va), image_size)
        pick = lambda idx: torch.stack([pil_to_uint8(ds[int(i)][0], image_size) for i in idx])  # noqa: E731
        classes = getattr(ds, classes_attr, None) or [str(c) for c in sorted(set(labels))]
        return ImageData(list(classes), pick(tr), torch.as_tensor(labels[tr]), pick(va), torch.as_tensor(labels[va]))

    return load


def _labels_of(ds) -> list[int]:
    for attr in ("targets", "_labels", "labels", "_samples"):
        if hasattr(ds, attr):
            val = getattr(ds, attr)
            return [int(v[1]) if isinstance(v, tuple) else int(v) for v in val]
    return [int(ds[i][1]) for i in range(len(ds))]


def prefetch(spec: DatasetSpec) -> str:
    """Download a torchvision dataset into the cache now (before class)."""
    name = spec.name
    if name == "fashion_mnist" and not fashion_available():
        return f"{name}: ready ({len(fashion_arrays()[0])} images) in {CACHE_DIR}"
    if spec.kind not in ("torchvision", "download"):  # "download": SST-2, NSMC (tlcore.text.specs)
        return f"{name}: offline, nothing to fetch"
    data = spec.load(per_class=1, val_per_class=1, image_size=32, seed=0, root="")
    return f"{name}: ready ({data.num_classes} classes) in {CACHE_DIR}"


_S, _D = "similar", "different"
# The image datasets, in the order pickers list them (tlcore.models.catalog registers them).
IMAGE_DATASETS: list[DatasetSpec] = [
    DatasetSpec(
        "digits",
        "Handwritten digits (scikit-learn, real, 10 classes)",
        "image",
        "offline",
        {"imagenet": _D, "synthetic": _D},
        "Real 8x8 greyscale pen strokes: unlike photos and unlike the synthetic fractals.",
        "8x8 흑백 손글씨 획: 사진과도, 합성 프랙탈과도 다릅니다.",
        load_digits,
        max_per_class=140,
    ),
    DatasetSpec(
        "synthetic_novel",
        "Novel synthetic patterns (10 unseen classes of the pretraining families)",
        "image",
        "offline",
        {"imagenet": _D, "synthetic": _S},
        "New classes drawn by the same generators the offline backbone was pretrained on.",
        "오프라인 백본을 사전 학습한 생성기로 그린, 처음 보는 클래스입니다.",
        _procedural("similar_target"),
    ),
    DatasetSpec(
        "digits_textured",
        "Digits on textured colour backgrounds (shifted domain)",
        "image",
        "offline",
        {"imagenet": _D, "synthetic": _D},
        "The same real digits pasted on coloured textures: a domain shift from plain digits.",
        "같은 손글씨 숫자를 색 질감 배경 위에 얹었습니다: 평범한 숫자에서의 도메인 이동입니다.",
        _procedural("textured_digits"),
    ),
    DatasetSpec(
        "folder",
        "Your image folder (one sub-folder per class)",
        "image",
        "folder",
        {"imagenet": _S, "synthetic": _D},
        "Your own photos: assumed similar to ImageNet's photos; change it if they are not.",
        "직접 준비한 사진: ImageNet 사진과 비슷하다고 가정합니다. 아니라면 바꾸세요.",
        load_folder,
    ),
]
for _name, _cls, _kw, _sim, _en, _ko in [
    (
        "cifar10",
        "CIFAR10",
        {"train": True},
        _S,
        "Small photos of everyday objects and animals, like ImageNet's.",
        "일상 사물과 동물의 작은 사진으로 ImageNet과 비슷합니다.",
    ),
    (
        "flowers102",
        "Flowers102",
        {"split": "train"},
        _S,
        "Photos of flowers; ImageNet has many plant photos.",
        "꽃 사진이며, ImageNet에도 식물 사진이 많습니다.",
    ),
    (
        "oxford_pets",
        "OxfordIIITPet",
        {"split": "trainval"},
        _S,
        "Photos of cats and dogs; ImageNet has over 100 dog breeds.",
        "고양이와 개 사진이며, ImageNet에는 개 품종만 100가지가 넘습니다.",
    ),
    (
        "eurosat",
        "EuroSAT",
        {},
        _D,
        "Satellite views of land use, seen from above: far from ImageNet's photos.",
        "위에서 내려다본 위성 사진으로 ImageNet 사진과 거리가 멉니다.",
    ),
]:
    IMAGE_DATASETS.append(
        DatasetSpec(
            _name,
            _cls,
            "image",
            "torchvision",
            {"imagenet": _sim, "synthetic": _D},
            _en,
            _ko,
            _torchvision(_cls, _kw),
        )
    )


# ----------------------------------------------------------------------------- Fashion-MNIST

# Real Fashion-MNIST (Zalando, MIT): 70,000 28x28 greyscale product photos of 10 kinds of
# clothing. Offline from Debian's package `dataset-fashion-mnist` (IDX files, gzipped);
# online from torchvision's download into the cache.
FASHION_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_INSTALL = (
    "Fashion-MNIST is not installed: on Debian or Ubuntu run `sudo apt-get install dataset-fashion-mnist` "
    "(offline afterwards), or when online `python -m tlcore prefetch --datasets fashion_mnist`"
)


def read_idx(path: Path | str) -> np.ndarray:
    """An IDX file (the MNIST format), gzipped or not -> numpy array of its dtype and shape.

    Layout: 2 zero bytes, a type code (0x08 = uint8), the number of dimensions, one
    big-endian uint32 per dimension, then the values in C order.
    """
    import gzip

    path = Path(path)
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path.name} is not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(f"{path.name}: unknown IDX value type 0x{raw[2]:02x}")
    ndim = raw[3]
    shape = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    values = np.frombuffer(raw, dtypes[raw[2]], offset=4 + 4 * ndim)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"{path.name}: header says {shape} but holds {values.size} values (truncated file?)")
    return values.reshape(shape)


def fashion_dir() -> Path | None:
    """Where the Debian package (or $TLCORE_FASHION_MNIST) keeps the IDX files, if anywhere."""
    extra = os.environ.get("TLCORE_FASHION_MNIST")
    for d in ((Path(extra),) if extra else ()) + FASHION_DIRS:
        if (d / "train-images-idx3-ubyte.gz").exists() or (d / "train-images-idx3-ubyte").exists():
            return d
    return None


def fashion_available() -> bool:
    return fashion_dir() is not None or (CACHE_DIR / "fashionmnist" / "FashionMNIST" / "raw").is_dir()


def _idx_file(folder: Path, stem: str) -> Path:
    gz = folder / f"{stem}.gz"
    return gz if gz.exists() else folder / stem


FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"  # torchvision's first mirror


@functools.lru_cache(maxsize=2)
def fashion_arrays(root: str = "") -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 images (N, 28, 28) uint8 and labels (N,), train file then test file.

    Offline: Debian's IDX files. Otherwise torchvision's FashionMNIST under `root` (or the
    cache), downloaded only when missing and the mirror answers.
    """
    folder = None if root else fashion_dir()
    if folder is not None:
        x = [read_idx(_idx_file(folder, f"{s}-images-idx3-ubyte")) for s in ("train", "t10k")]
        y = [read_idx(_idx_file(folder, f"{s}-labels-idx1-ubyte")) for s in ("train", "t10k")]
        return np.concatenate(x), np.concatenate(y).astype(np.int64)
    import torchvision.datasets as tvd

    base = Path(root) if root else CACHE_DIR / "fashionmnist"
    try:
        parts = [tvd.FashionMNIST(str(base), train=t, download=False) for t in (True, False)]
    except RuntimeError:
        if not offline.reachable(FASHION_URL):
            raise DatasetUnavailable(FASHION_INSTALL) from None
        parts = [tvd.FashionMNIST(str(base), train=t, download=True) for t in (True, False)]
    return np.concatenate([p.data.numpy() for p in parts]), np.concatenate([p.targets.numpy() for p in parts])


def load_fashion_mnist(*, per_class, val_per_class, image_size, seed, root="") -> ImageData:
    x, y = fashion_arrays(str(root or ""))
    tr, va = split_per_class(y, per_class, val_per_class, seed, "fashion_mnist")
    check_decoded_bytes(len(tr) + len(va), image_size)
    pick = lambda idx: resize_batch(torch.from_numpy(x[idx]).unsqueeze(1), image_size)  # noqa: E731  (n,1,28,28) -> (n,3,S,S)
    return ImageData(list(FASHION_CLASSES), pick(tr), torch.as_tensor(y[tr]), pick(va), torch.as_tensor(y[va]))


IMAGE_DATASETS.append(
    DatasetSpec(
        "fashion_mnist",
        "Fashion-MNIST (real clothing photos, 10 classes)",
        "image",
        "offline",
        {"imagenet": _D, "synthetic": _D},
        "Real product photos, but tiny (28x28), greyscale and centred on black: ImageNet knows jerseys, sandals and "
        "running shoes, yet its photos are colour scenes, so the low-level statistics differ.",
        "실제 상품 사진이지만 28x28 크기의 흑백 이미지이고 검은 배경 한가운데 놓여 있습니다. ImageNet에도 저지, 샌들, "
        "운동화가 있지만 컬러 장면 사진이라 저수준 통계가 다릅니다.",
        load_fashion_mnist,
        max_per_class=6000,
    )
)


# ----------------------------------------------------------------------------- a look first


def preview(data: ImageData, per_class: int = 4) -> list[tuple[str, np.ndarray]]:
    """Up to `per_class` training images of each class, side by side:
    [(class name, strip (S, per_class*S, 3) uint8), ...], for "see the data first"."""
    out = []
    for label, name in enumerate(data.classes):
        idx = (data.train_y == label).nonzero().flatten()[:per_class]
        if len(idx) == 0:
            continue
        images = data.train_x[idx].permute(0, 2, 3, 1)  # (n, S, S, 3)
        out.append((name, torch.cat(list(images), dim=1).numpy()))
    return out
