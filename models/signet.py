"""SigNet embedders (Dey et al. 2017, arXiv 1707.02131) built from a name.

Every embedder maps ``(N, 1, 155, 220) float32`` (ink bright, values in 0..1, see
``transforms.preprocess.preprocess_signature``) to ``(N, D) float32`` embeddings and exposes
``embedding_dim``. Layers are named through ``OrderedDict`` so that safetensors keys stay stable.

- ``signet``: the paper's table (conv1 stride 1, local response normalization).
- ``signet_s4``: the authors' released variant: conv1 stride 4 and BatchNorm instead of LRN
  (about 6.5 M parameters, about 0.5 GMAC per image): the CPU default.
- ``signet_s4x2``, ``signet_s4x3``: ensembles of separately trained ``signet_s4`` (``EmbedderEnsemble``).
- ``signet_s4x2_hog``, ``signet_s4x3_hog``: the ensemble with an untrained shape feature beside it
  (``models.hog.GradientHistogram``), assembled by ``models.attach_hog``.
- ``signet_s4x2_pool_hog``, ``signet_s4x3_pool_hog``: its members read at conv4 (``PooledConv``, heads dropped);
  ``signet_s4x2_headpool_hog``, ``signet_s4x3_headpool_hog``: read through their heads and at conv4 in one
  pass (``SigNetWithPooled``); both assembled by ``models.attach_pooled``.
- ``signet_s4x2_pool_hog_metric``, ``signet_s4x3_pool_hog_metric``: the conv4 reading with a weight per pooled
  channel and histogram bin learned on training writers (``WeightedEnsemble``), set by ``models.fit_metric``.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

INPUT_SHAPE = (1, 155, 220)
EMBEDDING_DIM = 128
# cells (rows, columns) of the conv4 reading (PooledConv, SigNetWithPooled, train_signet --pooled-weight);
# the validation writers pick it (SigNet card: pooled_shipped_20261202.grid_check_on_validation)
POOLED_GRID = (3, 4)


def _norm(kind: str, channels: int) -> nn.Module:
    """LRN(5, 1e-4, 0.75, k=2) as in the paper's table, or BatchNorm (released variant)."""
    if kind == "lrn":
        return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"norm must be 'lrn' or 'bn', got {kind!r}")


def _features(conv1_stride: int, norm: str) -> nn.Sequential:
    """The convolutional trunk of SigNet's table, normalisation and conv1 stride selectable."""
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 96, kernel_size=11, stride=conv1_stride)),
        ("relu1", nn.ReLU(inplace=True)),
        ("norm1", _norm(norm, 96)),
        ("pool1", nn.MaxPool2d(kernel_size=3, stride=2)),
        ("conv2", nn.Conv2d(96, 256, kernel_size=5, padding=2)),
        ("relu2", nn.ReLU(inplace=True)),
        ("norm2", _norm(norm, 256)),
        ("pool2", nn.MaxPool2d(kernel_size=3, stride=2)),
        ("drop2", nn.Dropout(0.3)),
        ("conv3", nn.Conv2d(256, 384, kernel_size=3, padding=1)),
        ("relu3", nn.ReLU(inplace=True)),
        ("conv4", nn.Conv2d(384, 256, kernel_size=3, padding=1)),
        ("relu4", nn.ReLU(inplace=True)),
        ("pool4", nn.MaxPool2d(kernel_size=3, stride=2)),
        ("drop4", nn.Dropout(0.3)),
    ]))


def _check_input(x: torch.Tensor) -> None:
    if x.ndim != 4 or tuple(x.shape[1:]) != INPUT_SHAPE:
        raise ValueError(f"input must be (N, {', '.join(map(str, INPUT_SHAPE))}), got {tuple(x.shape)}")


def cell_grid(grid: tuple[int, int]) -> tuple[int, int]:
    """``(rows, columns)`` as ints; raises unless both are at least 1 (the pooled readings' and the gradient
    histogram's grid)."""
    if len(grid) != 2 or min(grid) < 1:
        raise ValueError(f"grid must be (rows, columns) of at least 1 cell each, got {grid}")
    return int(grid[0]), int(grid[1])


def _conv4_end(features: nn.Sequential) -> int:
    """How many of the trunk's layers lead up to conv4's ReLU (the pooled readings' cut)."""
    return [name for name, _ in features.named_children()].index("relu4") + 1


def _pooled_cells(maps: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``(N, C, H, W)`` conv maps -> ``(N, C * rows * columns)``: averaged on ``grid``, square-rooted, each cell's
    C-vector L2-normalised."""
    cells = nn.functional.adaptive_avg_pool2d(maps, grid).clamp_min(0.0).sqrt()
    return torch.flatten(cells / cells.norm(dim=1, keepdim=True).clamp_min(1e-6), 1)


class SigNet(nn.Module):
    """Convolutional trunk, then FC 1024 (ReLU, dropout 0.5) and FC ``embedding_dim``.

    The flatten size is measured with one dummy forward of ``INPUT_SHAPE`` at construction,
    so changing the trunk never needs a hand-computed constant.
    """

    def __init__(self, conv1_stride: int, norm: str, embedding_dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        if conv1_stride < 1:
            raise ValueError(f"conv1_stride must be >= 1, got {conv1_stride}")
        self.embedding_dim = embedding_dim
        self.features = _features(conv1_stride, norm)
        with torch.no_grad():
            flat = self.features.eval()(torch.zeros(1, *INPUT_SHAPE)).numel()
        self.features.train()
        self.head = nn.Sequential(OrderedDict([
            ("fc1", nn.Linear(flat, 1024)),
            ("relu_fc1", nn.ReLU(inplace=True)),
            ("drop_fc1", nn.Dropout(0.5)),
            ("fc2", nn.Linear(1024, embedding_dim)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 155, 220) float32`` -> ``(N, embedding_dim) float32``."""
        _check_input(x)
        return self.head(torch.flatten(self.features(x), 1))

    def pooled_and_embedding(self, x: torch.Tensor, grid: tuple[int, int] = POOLED_GRID) -> tuple[torch.Tensor, torch.Tensor]:
        """One trunk pass read twice: the conv4 maps pooled as ``PooledConv`` reads them (scale 1,
        ``(N, 256 * rows * columns)``) and the head's embedding ``(N, embedding_dim)``."""
        _check_input(x)
        layers = list(self.features)
        cut = _conv4_end(self.features)
        conv4 = x
        for layer in layers[:cut]:
            conv4 = layer(conv4)
        cells = _pooled_cells(conv4, cell_grid(grid))
        rest = conv4
        for layer in layers[cut:]:
            rest = layer(rest)
        return cells, self.head(torch.flatten(rest, 1))


class PooledConv(nn.Module):
    """A SigNet trunk read at conv4 instead of through the FC head: ``(N, 1, 155, 220)`` ->
    ``(N, 256 * grid_h * grid_w)``.

    The conv4 maps (after ReLU) are averaged over a ``grid`` of cells, square-rooted, each cell's
    256-channel vector L2-normalised, flattened and multiplied by ``scale`` (a buffer, set when the
    embedder is assembled, see ``models.attach_pooled``). Its layers carry the names of ``SigNet.features``
    up to ``relu4``, so a trained member's trunk weights load into it as they are; the FC head is left
    out. Read this way, a member trained on some collections separates the skilled forgeries of a
    collection it never saw much better than its head does (SigNet card: ``pooled_conv4_20261202``).
    """

    def __init__(self, conv1_stride: int = 4, norm: str = "bn", grid: tuple[int, int] = POOLED_GRID,
                 scale: float = 1.0) -> None:
        super().__init__()
        self.grid = cell_grid(grid)
        trunk = _features(conv1_stride, norm)
        self.features = nn.Sequential(OrderedDict(list(trunk.named_children())[:_conv4_end(trunk)]))
        channels = int(self.features.conv4.out_channels)
        self.embedding_dim = channels * self.grid[0] * self.grid[1]
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 155, 220) float32`` -> ``(N, embedding_dim) float32``."""
        _check_input(x)
        return _pooled_cells(self.features(x), self.grid) * self.scale


class SigNetWithPooled(SigNet):
    """A SigNet member read twice in one trunk pass: its FC head's embedding and its conv4 maps pooled as
    ``PooledConv`` reads them, ``(N, embedding_dim + 256 * grid_h * grid_w)``.

    Parameter names are ``SigNet``'s, so a trained member's weights load as they are; the buffers
    ``head_scale`` and ``pool_scale`` (set when the embedder is assembled, ``models.attach_pooled --keep-heads``)
    weigh the two readings, whose squared distances add. The head carries what the member learned of the
    training collections (it holds up on scanned pages with a seal over the signature), the pooled maps
    what generalises to a collection it never saw (SigNet card: ``pooled_conv4_20261202``).
    """

    def __init__(self, conv1_stride: int = 4, norm: str = "bn", embedding_dim: int = EMBEDDING_DIM,
                 grid: tuple[int, int] = POOLED_GRID, head_scale: float = 1.0, pool_scale: float = 1.0) -> None:
        super().__init__(conv1_stride, norm, embedding_dim)
        self.grid = cell_grid(grid)
        self.head_dim = embedding_dim
        self.embedding_dim = embedding_dim + int(self.features.conv4.out_channels) * self.grid[0] * self.grid[1]
        self.register_buffer("head_scale", torch.tensor(float(head_scale)))
        self.register_buffer("pool_scale", torch.tensor(float(pool_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 155, 220) float32`` -> ``(N, embedding_dim) float32``: scaled head, then scaled pooled maps."""
        cells, head = self.pooled_and_embedding(x, self.grid)
        return torch.cat([head * self.head_scale, cells * self.pool_scale], dim=1)


def _signet() -> nn.Module:
    return SigNet(conv1_stride=1, norm="lrn")


def _signet_s4() -> nn.Module:
    return SigNet(conv1_stride=4, norm="bn")


class EmbedderEnsemble(nn.Module):
    """Several embedders side by side: their embeddings concatenated, ``(N, sum of dims)``.

    The squared distance between two concatenated embeddings is the sum of the members' squared
    distances, so the ensemble's writer score combines its members' without any new parameter.
    Members are trained separately (``models.train_signet``) and assembled by ``models.ensemble``.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.embedding_dim = sum(int(m.embedding_dim) for m in members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 155, 220) float32`` -> ``(N, embedding_dim) float32``."""
        return torch.cat([m(x) for m in self.members], dim=1)


class WeightedEnsemble(EmbedderEnsemble):
    """An ``EmbedderEnsemble`` whose concatenated embedding is multiplied column by column by ``dim_scale``
    (a buffer, ones until ``models.fit_metric`` sets it): the squared distance of two embeddings becomes a
    weighted sum of the columns' squared differences, the weights (``dim_scale ** 2``) learned on training
    writers."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__(members)
        self.register_buffer("dim_scale", torch.ones(self.embedding_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 155, 220) float32`` -> ``(N, embedding_dim) float32``: the members' embeddings, weighted."""
        return super().forward(x) * self.dim_scale


def _signet_s4_ensemble(n: int) -> Callable[[], nn.Module]:
    return lambda: EmbedderEnsemble([_signet_s4() for _ in range(n)])


def _with_histogram(member: Callable[[], nn.Module], n: int,
                    ensemble: type[EmbedderEnsemble] = EmbedderEnsemble) -> Callable[[], nn.Module]:
    """A builder of an ``ensemble`` of ``n`` members made by ``member`` and the gradient histogram as the last member."""
    def build() -> nn.Module:
        from models.hog import GradientHistogram  # models.hog imports this module's INPUT_SHAPE

        return ensemble([*(member() for _ in range(n)), GradientHistogram()])
    return build


# member counts of the assembled ensembles (models.ensemble, models.attach_hog, models.attach_pooled)
ENSEMBLE_SIZES = (2, 3)

EMBEDDERS: dict[str, Callable[[], nn.Module]] = {
    "signet": _signet,
    "signet_s4": _signet_s4,
    **{f"signet_s4x{n}": _signet_s4_ensemble(n) for n in ENSEMBLE_SIZES},
    **{f"signet_s4x{n}_hog": _with_histogram(_signet_s4, n) for n in ENSEMBLE_SIZES},
    **{f"signet_s4x{n}_pool_hog": _with_histogram(PooledConv, n) for n in ENSEMBLE_SIZES},
    **{f"signet_s4x{n}_headpool_hog": _with_histogram(SigNetWithPooled, n) for n in ENSEMBLE_SIZES},
    **{f"signet_s4x{n}_pool_hog_metric": _with_histogram(PooledConv, n, WeightedEnsemble) for n in ENSEMBLE_SIZES},
}


def build_embedder(name: str) -> nn.Module:
    """A freshly initialised embedder from its name (one of ``EMBEDDERS``)."""
    if name not in EMBEDDERS:
        raise ValueError(f"unknown embedder {name!r}, expected one of {sorted(EMBEDDERS)}")
    return EMBEDDERS[name]()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
