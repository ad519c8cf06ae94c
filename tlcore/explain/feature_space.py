"""The feature space, before any training: what a backbone's frozen body makes of the data.

The learner's training examples go through a backbone's body twice, once with its pretrained
weights and once with the same architecture at random (seeded) weights, and after a fine-tune
a third time with the fine-tuned body. Each set of features is

- projected to 2-D (PCA by default; t-SNE from scikit-learn, or UMAP where `umap-learn` is
  installed) for a picture with one colour per class, and
- scored by two probes fitted on the frozen training features and measured on the validation
  split: a logistic regression (a linear probe: what a new head alone could reach) and the
  nearest class mean (no training at all: is each example closest to its own class's centre?).

Pretrained features already cluster by class because the body learnt, on millions of other
images (or sentences), features that tell things apart; random features keep only what the
pixels (or tokens) themselves say. The gap between the two probes is transfer learning's
promise, measured on the learner's own data before any training.

Features come from the runs' own extractors: `TensorSource.prepare` (images: every body
group, then the average over the feature map the head pools) and `TextSource.prepare` (text:
the last layer's first-token vector the classifier head reads). The heavy part (a few seconds
on a 2-core CPU for a few hundred examples) runs on one background thread (`FeatureSpaces`),
so no page waits for it; each body's features are kept per image, and a server's warm-up computes
the views a class sees first (`first_views`).

Returns plain data (coordinates, labels, class names, accuracies, timings): no plotting here.
Not for: training (tlcore.train.recipe) or showing the picture (studio.feature_space_panel).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import torch

from tlcore.core.bounded import LRU
from tlcore.data import datasets
from tlcore.models import catalog
from tlcore.train.device import lower_thread_priority
from tlcore.train.finetuned import Finetuned

METHODS = ("pca", "tsne", "umap")  # 2-D projections; "umap" only where umap-learn is installed
THUMB_PX = 56  # the hover thumbnail of each image point (shown enlarged)
# Training examples per class in the picture, at most: a few hundred points, seconds on a CPU
# (an image costs a body's forward pass; a sentence far less).
MAX_PER_CLASS = {"image": 50, "text": 100}
MAX_SENTENCE_CHARS = 160  # a sentence in a hover label, cut beyond this


def methods_available() -> tuple[str, ...]:
    """The projections this machine can run (UMAP needs the optional `umap-learn`)."""
    return tuple(m for m in METHODS if m != "umap" or importlib.util.find_spec("umap") is not None)


def load_libraries() -> None:
    """Import what a first view needs from scikit-learn (projections, the probe): about 140 MB
    resident and a second or two, once per process. The class server's warm-up calls it, so the
    first learner's view does not wait for it and a burst of views leaves memory where it began."""
    import sklearn.decomposition  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.manifold  # noqa: F401


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Space:
    """One body's view of the data: 2-D points and how well frozen features separate the classes."""

    kind: str  # "pretrained", "random" or "finetuned"
    coords: np.ndarray  # (N, 2) float32, one row per training example, centred, unit RMS
    probe_acc: float  # logistic regression on the frozen features: fit on train, scored on validation
    ncm_acc: float  # nearest class mean (standardised features), scored on validation
    dim: int  # feature size per example (1280 for EfficientNet-Lite0, 384 for MiniLM)
    explained: tuple[float, float] | None  # PCA: share of the variance each axis keeps; None for t-SNE / UMAP
    embed_s: float  # seconds to run the body over train + validation
    backbone: str  # what really ran (an offline fallback, not always the one asked for)


@dataclass(frozen=True)
class FeatureView:
    """Everything the page draws: the same training examples seen by two or three bodies."""

    task: str  # "image" or "text"
    dataset: str
    classes: tuple[str, ...]
    labels: np.ndarray  # (N,) int64: the class of each training example (rows of every Space's coords)
    spaces: dict[str, Space]  # "pretrained", "random", and "finetuned" after a fine-tune
    method: str
    n_val: int
    thumbs: np.ndarray | None = None  # images: (N, THUMB_PX, THUMB_PX, 3) uint8, for hover labels
    texts: tuple[str, ...] = ()  # text: the training sentences
    timings: dict[str, float] = field(default_factory=dict)  # load_s, embed_s, project_s, probe_s, total_s

    @property
    def gap(self) -> float:
        """Linear-probe accuracy of pretrained minus random features, in points of accuracy (0..1)."""
        return self.spaces["pretrained"].probe_acc - self.spaces["random"].probe_acc


# ----------------------------------------------------------------------------- features


def _pooled(features: torch.Tensor) -> torch.Tensor:
    """A body's output as one vector per example, the one its head reads:
    (N, C, h, w) -> (N, C) by the average over the map (CNN heads pool it); (N, T, D) -> (N, D)
    the class token (ViT's head)."""
    features = features.float()
    if features.ndim == 4:
        return features.mean(dim=(2, 3))
    if features.ndim == 3:
        return features[:, 0]
    return features.flatten(1)


@torch.no_grad()
def image_features(
    model, data: datasets.ImageData, *, device: torch.device | None = None, batch_size: int = 64, share: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(train (N, D), validation (M, D)) float32 features of a vision model's frozen body, made
    by the same extractor a run's cached frozen prefix uses (`TensorSource.prepare`, every group
    but the head, in eval mode), then pooled as the head pools them."""
    from tlcore.train.image_batches import TensorSource

    device = device or torch.device("cpu")
    model = model.to(device).eval()
    source = TensorSource(data, device, augment="none")
    body = len(model.group_names) - 1
    done = source.prepare(model, body, batch_size, contextlib.nullcontext, share=share)
    if done != body:  # only when the features would pass the source's memory budget
        raise ValueError(f"the features of {len(data.train_y)} images do not fit the feature cache")
    return _pooled(source.train_x).cpu().numpy(), _pooled(source.val_x).cpu().numpy()


@torch.no_grad()
def text_features(
    model, data, *, device: torch.device | None = None, batch_size: int = 32, max_length: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train (N, D), validation (M, D), validation labels (M,)) of a text model's frozen encoder:
    the first-token vector of its last layer, which its classifier head reads, made by the same
    pass a linear-probe run caches (`TextSource.prepare`). The validation rows come in the
    source's length order, hence their own labels."""
    from tlcore.text.batches import TextSource

    device = device or torch.device("cpu")
    model = model.to(device).eval()
    source = TextSource(data, model.tokenizer, device, max_length)
    body = len(model.groups) - 1
    if source.prepare(model, body, batch_size, contextlib.nullcontext) != body:
        raise ValueError(f"{model.backbone_name}: its first-token features cannot be read apart from the head")
    return source.train_feats.cpu().numpy(), source.val_feats.cpu().numpy(), source.val_y.cpu().numpy()


# ----------------------------------------------------------------------------- projection and probes


def _one_thread():
    """BLAS on one thread for the small fits here: with two threads on a busy 2-core machine a
    300 x 1280 logistic regression took 11 s instead of 0.13 s (the threads wait on each other)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def project(features: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, tuple[float, float] | None]:
    """(N, D) -> ((N, 2) float32 centred at 0 with unit RMS, PCA's explained variance ratios or None).

    PCA is linear and fast (the axes are the two directions the features vary most);
    t-SNE and UMAP keep neighbours together and may pull clusters apart that PCA overlaps,
    at the price of distances between clusters that mean little."""
    with _one_thread():
        return _project(np.asarray(features, dtype=np.float64), method, seed)


def _project(x: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, tuple[float, float] | None]:
    n = len(x)
    explained = None
    if n < 3:
        coords = np.zeros((n, 2))
    elif method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed)
        coords = pca.fit_transform(x)
        explained = tuple(float(v) for v in pca.explained_variance_ratio_)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        coords = TSNE(
            n_components=2, perplexity=float(min(30, max(2, (n - 1) // 3))), init="pca", random_state=seed
        ).fit_transform(_standardised(x, x))
    elif method == "umap":
        import umap  # optional: umap-learn

        coords = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed).fit_transform(x)
    else:
        raise ValueError(f"unknown projection {method!r}; choose one of {', '.join(methods_available())}")
    coords = coords - coords.mean(axis=0)
    rms = float(np.sqrt((coords**2).sum(axis=1).mean())) or 1.0
    return (coords / rms).astype(np.float32), explained


def _standardised(x: np.ndarray, fit_on: np.ndarray) -> np.ndarray:
    mean, std = fit_on.mean(axis=0), fit_on.std(axis=0)
    return (x - mean) / np.where(std > 1e-8, std, 1.0)


def probe_accuracy(
    train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, seed: int = 0
) -> tuple[float, float]:
    """(logistic regression, nearest class mean) validation accuracy on frozen features.

    Both are fitted on the training features only (standardised with the training set's mean
    and spread) and scored on validation examples they never saw. The logistic regression is
    what a linear probe's head could reach; the nearest class mean needs no training at all."""
    with _one_thread():
        return _probes(train_x, train_y, val_x, val_y, seed)


def _probes(train_x, train_y, val_x, val_y, seed: int) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    train_y, val_y = np.asarray(train_y), np.asarray(val_y)
    tr = _standardised(np.asarray(train_x, np.float64), np.asarray(train_x, np.float64))
    va = _standardised(np.asarray(val_x, np.float64), np.asarray(train_x, np.float64))
    if len(np.unique(train_y)) < 2:
        raise ValueError("a probe needs training examples of at least two classes")
    clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    with np.errstate(all="ignore"):  # random bodies can give huge, nearly constant features
        clf.fit(np.nan_to_num(tr), train_y)
        logistic = float((clf.predict(np.nan_to_num(va)) == val_y).mean())
    classes = np.unique(train_y)
    means = np.stack([tr[train_y == c].mean(axis=0) for c in classes])  # (K, D)
    dist = ((va[:, None, :] - means[None, :, :]) ** 2).sum(axis=-1)  # (M, K)
    ncm = float((classes[np.nan_to_num(dist, nan=np.inf).argmin(axis=1)] == val_y).mean())
    return logistic, ncm


# ----------------------------------------------------------------------------- whole views


@dataclass(frozen=True)
class Request:
    """What a feature view shows; also its cache key. Training examples per class are capped
    at MAX_PER_CLASS[task] (a few hundred points in all)."""

    task: str  # "image" or "text"
    backbone: str
    dataset: str
    per_class: int
    val_per_class: int
    image_size: int = 0  # images only
    seed: int = 0
    root: str = ""  # an uploaded folder or CSV
    method: str = "pca"
    finetuned_id: str = ""  # a model on the shelf (tlcore.train.finetuned) to add as a third view
    max_length: int = 64  # text: tokens per sentence

    def data_key(self) -> tuple:
        return (self.task, self.dataset, self.shown_per_class, self.val_per_class, self.image_size, self.seed, self.root)

    @property
    def shown_per_class(self) -> int:
        return min(self.per_class, MAX_PER_CLASS[self.task])

    @classmethod
    def of(cls, config, method: str = "pca") -> Request:
        """The view of the data a run with `config` (a RunConfig) trains on, in projection `method`."""
        c, size = config, config.image_size if config.task == "image" else 0
        return cls(
            c.task, c.backbone, c.dataset, c.per_class, c.val_per_class, size, c.data_seed, c.data_root, method, "", c.max_length
        )


FIRST_PER_CLASS = 30  # page 1's view: the default data, 30 training examples per class


def first_views() -> tuple[Request, Request]:
    """The views a class sees first: page 1's, and page 3's on its default settings (the default run's
    data: 20 per class, inside page 1's 30). A server computes both while it warms up (studio.server)."""
    from tlcore.train import presets

    image = presets.image()
    return Request.of(image.replace(per_class=FIRST_PER_CLASS)), Request.of(image)


@contextlib.contextmanager
def _seeded(seed: int):
    """Draw a body's random weights from `seed` (the random body is the same for everyone who asks)
    and give torch's global random stream back as it was: this runs on its own thread beside the
    training worker, whose seeded runs draw their heads' weights and dropout from that stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _bodies(request: Request, num_classes: int) -> list[tuple[str, str, Callable[[], torch.nn.Module]]]:
    """(kind, backbone that really runs, builder) for the pretrained and the random body."""
    if request.task == "text":
        from tlcore.text.bert import build_text_model

        name, pretrained, _ = catalog.resolve_pretrained(request.backbone, "auto")

        def text_body(flag: bool):
            with _seeded(request.seed):
                return build_text_model(name, num_classes, pretrained=flag)

        bodies = [("random", name, lambda: text_body(False))]
        return ([("pretrained", name, lambda: text_body(True))] if pretrained else []) + bodies
    name, pretrained, _ = catalog.resolve_pretrained(request.backbone, "auto")

    def image_body(flag: bool):
        with _seeded(request.seed):
            return catalog.build_model(name, num_classes, pretrained=flag, image_size=request.image_size)

    bodies = [("random", name, lambda: image_body(False))]
    return ([("pretrained", name, lambda: image_body(True))] if pretrained else []) + bodies


# Frozen features kept per body and per image (keyed by the image's bytes): a new projection re-embeds
# nothing, and a view over images another view showed (page 3's default split is inside page 1's:
# `datasets.split_per_class`) runs no body. 64 MB: about 13,000 rows of Lite0's 1280 features.
FEATURE_ROWS_MB = 64
_rows: LRU[tuple, np.ndarray] = LRU(FEATURE_ROWS_MB * 2**20, weigh=lambda row: row.nbytes)
# Text views whole (a sentence costs far less than an image's forward pass), bounded by count.
_features: LRU[tuple, tuple] = LRU(8)


def image_digest(image: torch.Tensor) -> bytes:
    """A digest of one (3, S, S) uint8 image's shape and bytes: what its features depend on."""
    h = hashlib.blake2b(repr(tuple(image.shape)).encode(), digest_size=16)
    h.update(image.contiguous().numpy().data)
    return h.digest()


def _body_key(request: Request, kind: str, name: str, num_classes: int) -> tuple:
    """What a body's weights come from: `name`'s pretrained ones, the seed's random draw (the head's
    too: the class count), or one fine-tuned model."""
    if kind == "pretrained":
        return (kind, name)
    if kind == "random":
        return (kind, name, request.seed, num_classes, request.image_size)
    return (kind, name, request.finetuned_id)


@torch.no_grad()
def _pooled_rows(model, images: torch.Tensor, device: torch.device) -> np.ndarray:
    """(N, 3, S, S) uint8 -> (N, D) float32: some images' pooled body output, as `TensorSource.prepare`
    computes a frozen prefix (eval mode, on a CPU a bounded number of pixels at a time)."""
    from tlcore.train.image_batches import CPU_PREFIX_PIXELS

    model = model.to(device).eval()
    body = len(model.group_names) - 1
    chunk = max(1, CPU_PREFIX_PIXELS // (images.shape[-1] * images.shape[-2])) if device.type == "cpu" else 256
    out = [_pooled(model.forward_to(images[i : i + chunk].to(device), body)) for i in range(0, len(images), chunk)]
    return torch.cat(out).cpu().numpy()


def _embed_images(
    request: Request, kind: str, name: str, build: Callable[[], torch.nn.Module], data, device: torch.device
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(train features, validation features, validation labels, seconds) of one body over the
    view's images; only the images this body has not seen yet go through it."""
    t0 = time.perf_counter()
    body = _body_key(request, kind, name, data.num_classes)
    images = torch.cat((data.train_x, data.val_x))
    keys = [(body, image_digest(image)) for image in images]
    found = [_rows.get(key) for key in keys]
    missing = [i for i, row in enumerate(found) if row is None]
    if len(missing) == len(keys):  # none seen: the whole split, as a linear probe's run caches it
        # kept for a linear probe's run only from the pretrained body (others' would fill that cache)
        train, val = image_features(build(), data, device=device, share=kind == "pretrained")
        made = np.concatenate((train, val))
    elif missing:
        made = _pooled_rows(build(), images[missing], device)
    for i, row in zip(missing, made if missing else ()):
        found[i] = row.copy()  # its own copy: a kept row holds no whole batch alive
        _rows.put(keys[i], found[i])
    rows = np.stack(found)
    n = len(data.train_x)
    return rows[:n], rows[n:], data.val_y.numpy(), time.perf_counter() - t0


def _embed(
    request: Request, kind: str, name: str, build: Callable[[], torch.nn.Module], data, device: torch.device
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(train features, validation features, validation labels, seconds) of one body, cached."""
    if request.task != "text":
        return _embed_images(request, kind, name, build, data, device)

    def make():
        t0 = time.perf_counter()
        train, val, val_y = text_features(build(), data, device=device, max_length=request.max_length)
        return train, val, val_y, time.perf_counter() - t0

    key = (kind, name, request.finetuned_id if kind == "finetuned" else "", request.max_length, *request.data_key())
    return _features.get_or_make(key, make)


def load_data(request: Request):
    """The training and validation split the view shows: the same loader and split rule as a
    run (validation first, seeded), so a run's validation examples are the view's."""
    return catalog.load_dataset(
        request.dataset,
        per_class=request.shown_per_class,
        val_per_class=request.val_per_class,
        image_size=request.image_size,
        seed=request.seed,
        root=request.root,
    )


def feature_view(
    request: Request,
    *,
    finetuned: Finetuned | None = None,
    device: torch.device | None = None,
    on_space: Callable[[FeatureView], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FeatureView:
    """Embed the request's training split with the pretrained body and the random one (and the
    fine-tuned one, `finetuned`, the model that `finetuned_id` names: the caller looks it up on
    its shelf), project each to 2-D, and score both probes on the validation split.

    on_space: called with the view so far after each body but the last (the pretrained body's
    panel, whole, while the random body runs: half a cold view's wait on a page).
    should_stop: asked before each layer of a body runs; True raises `Stopped` (the server exits)."""
    if request.method not in methods_available():
        raise ValueError(f"unknown projection {request.method!r}; choose one of {', '.join(methods_available())}")
    device = device or torch.device("cpu")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = load_data(request)
    timings["load_s"] = time.perf_counter() - t0
    bodies = _bodies(request, data.num_classes)
    if request.finetuned_id:
        if finetuned is None:
            raise FinetunedGone(request.finetuned_id)
        bodies.append(("finetuned", finetuned.backbone, lambda: finetuned.model))
    shown = _hovers(request, data)
    spaces, train_y = {}, data.train_y.numpy()
    timings.update(embed_s=0.0, project_s=0.0, probe_s=0.0)

    def view_so_far() -> FeatureView:
        head = (request.task, request.dataset, tuple(data.classes), train_y, dict(spaces), request.method, len(data.val_y))
        return FeatureView(*head, timings={**timings, "total_s": time.perf_counter() - t0}, **shown)

    for kind, name, build in bodies:
        with _stops_when(should_stop) as stoppable:
            train, val, val_y, seconds = _embed(request, kind, name, lambda b=build: stoppable(b()), data, device)
        t1 = time.perf_counter()
        coords, explained = project(train, request.method, request.seed)
        t2 = time.perf_counter()
        logistic, ncm = probe_accuracy(train, train_y, val, val_y, request.seed)
        timings["embed_s"] += seconds
        timings["project_s"] += t2 - t1
        timings["probe_s"] += time.perf_counter() - t2
        spaces[kind] = Space(kind, coords, logistic, ncm, int(train.shape[1]), explained, seconds, name)
        if on_space is not None and len(spaces) < len(bodies):
            on_space(view_so_far())
    return view_so_far()


def _hovers(request: Request, data) -> dict:
    """Each point's sentence, shortened, or its picture, (N, H, W, C) thumbnails, for its hover."""
    if request.task == "text":
        n = MAX_SENTENCE_CHARS
        return {"texts": tuple(t if len(t) <= n else t[: n - 1] + "…" for t in data.train_texts)}
    return {"thumbs": datasets.resize_batch(data.train_x, THUMB_PX).permute(0, 2, 3, 1).contiguous().numpy()}


class FinetunedGone(LookupError):
    """The fine-tuned model is no longer on the shelf (newer runs pushed it out)."""


class Stopped(RuntimeError):
    """The feature worker was stopped (the server exits) while this view was computed."""


@contextlib.contextmanager
def _stops_when(should_stop: Callable[[], bool] | None):
    """Yields `stoppable(model) -> model`: every layer of the model then asks `should_stop` before it
    runs and raises `Stopped` on True, within a layer's time, not a body's; the checks are taken off
    again on the way out (a fine-tuned model on the shelf keeps none)."""
    handles = []

    def check(_module, _args) -> None:
        if should_stop():
            raise Stopped("the feature worker was stopped")

    def stoppable(model: torch.nn.Module) -> torch.nn.Module:
        if should_stop is not None:
            if should_stop():
                raise Stopped("the feature worker was stopped")
            handles.extend(m.register_forward_pre_hook(check) for m in model.modules())
        return model

    try:
        yield stoppable
    finally:
        for handle in handles:
            handle.remove()


# ----------------------------------------------------------------------------- in the background


class Busy(RuntimeError):
    """Too many different feature views are waiting to be computed; try again in a moment."""


@dataclass(frozen=True)
class Status:
    state: str  # "missing" (never asked), "running" (queued or computing), "done", "failed"
    view: FeatureView | None = None  # running: the bodies done so far (None before the first); done: all
    error: BaseException | None = None


class FeatureSpaces:
    """Feature views computed on one background thread and kept, newest `max_kept`.

    A page asks with `start(request)` (returns at once) and reads `status(request)` on its
    next runs: a page's script never waits for a body's forward passes, and while a view is
    computed its status carries the bodies done so far (the pretrained panel first).
    `compute(request, finetuned=..., on_space=...)`: `feature_view`'s signature. Learners asking for
    the same view share one computation and one result (a class on page 1 asks for the same
    default view). At most `max_waiting` different views wait at once; more are refused
    (`Busy`) rather than queued for minutes. The thread runs at a lower CPU priority
    (nice +`nice`, like the training worker) so pages are answered first.

    `stop()` ends the thread within a layer's time (the server's exit: torch code left running
    in a thread at the interpreter's end aborts the process, and a pool's thread would be
    waited for to the end of its view); `shared_spaces()` stops the server's at exit."""

    def __init__(
        self,
        compute: Callable[[Request], FeatureView] = feature_view,
        *,
        max_kept: int = 16,
        max_waiting: int = 8,
        nice: int = 10,
    ):
        self._compute = compute
        self.max_kept, self.max_waiting, self.nice = max_kept, max_waiting, nice
        self._done: LRU[Request, FeatureView] = LRU(max_kept)
        self._failed: LRU[Request, BaseException] = LRU(max_kept)
        self._running: dict[Request, Future] = {}
        self._partial: dict[Request, FeatureView] = {}  # running views' bodies done so far
        self._lock = threading.Lock()
        self._waiting: queue.SimpleQueue = queue.SimpleQueue()  # (future, request, finetuned); None: stop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None  # started by the first view asked for

    def _serve(self) -> None:
        if self.nice:
            lower_thread_priority(self.nice)
        while (item := self._waiting.get()) is not None:
            future, request, finetuned = item
            self._work(request, finetuned)
            future.set_result(None)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker: the view under way ends at its next layer (failed with `Stopped`), the
        ones still waiting are not begun. New views are refused (`Busy`) from now on."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        self._waiting.put(None)
        if thread is not None:
            thread.join(timeout)

    def status(self, request: Request) -> Status:
        with self._lock:
            view = self._done.get(request)
            if view is not None:
                return Status("done", view)
            if request in self._running:
                return Status("running", self._partial.get(request))
            error = self._failed.get(request)
            if error is not None:
                return Status("failed", error=error)
        return Status("missing")

    def start(self, request: Request, finetuned: Finetuned | None = None) -> Status:
        """Compute `request` in the background unless it is done or under way; a failed one is
        tried again. `finetuned`: the model its `finetuned_id` names (looked up by the caller).
        Raises Busy when `max_waiting` other views are waiting already."""
        with self._lock:
            view = self._done.get(request)
            if view is not None:
                return Status("done", view)
            if request in self._running:
                return Status("running", self._partial.get(request))
            if self._stop.is_set():
                raise Busy("the server is stopping")
            if len(self._running) >= self.max_waiting:
                raise Busy(f"{len(self._running)} feature views are being computed; try again in a moment")
            self._failed.pop(request, None)
            self._running[request] = future = Future()
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="tlcore-features", daemon=True)
                self._thread.start()
        self._waiting.put((future, request, finetuned))
        return Status("running")

    def _work(self, request: Request, finetuned: Finetuned | None) -> None:
        def so_far(view: FeatureView) -> None:
            with self._lock:
                self._partial[request] = view

        try:
            if self._stop.is_set():
                raise Stopped("the feature worker was stopped")
            view = self._compute(request, finetuned=finetuned, on_space=so_far, should_stop=self._stop.is_set)
        except Exception as error:  # noqa: BLE001 -- kept for the page to explain, never raised in a thread
            with self._lock:
                self._running.pop(request, None)
                self._partial.pop(request, None)
                self._failed.put(request, error)
            return
        with self._lock:
            self._running.pop(request, None)
            self._partial.pop(request, None)
            self._done.put(request, view)

    def wait(self, request: Request, timeout: float = 120.0) -> Status:
        """Block until `request` is done or failed (the CLI and tests; never a page)."""
        with self._lock:
            future = self._running.get(request)
        if future is not None:
            future.result(timeout=timeout)
        return self.status(request)


_shared: FeatureSpaces | None = None
_shared_lock = threading.Lock()


def shared_spaces() -> FeatureSpaces:
    """The server's one background feature-view worker and cache (a module global, like the job
    queue: Streamlit's "clear cache" message must not drop work under way)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FeatureSpaces()
            atexit.register(_shared.stop)  # a daemon thread: not waited for, so stopped here
        return _shared
