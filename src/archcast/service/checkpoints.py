"""Where latency predictors live, one per platform.

* shipped with the package: ``archcast/checkpoints/latency-<platform name>/``;
* made on this machine (``archcast adapt``): ``<user data dir>/predictors/latency-<platform name>/``
  (``--predictor archcast``) or ``.../kernels-<platform name>/`` (the kernel-level one, the default)
  (``$ARCHCAST_PREDICTORS`` overrides the directory). A user predictor for a platform name wins
  over the shipped one.

Every latency checkpoint's ``config.json`` holds ``platform`` (the
:class:`~archcast.profile.platform.Platform` fields it was trained on).
"""

from __future__ import annotations

import os
from pathlib import Path

from archcast.errors import InvalidInputError

PREFIX = "latency-"
KERNEL_PREFIX = "kernels-"  # the kernel-level predictor of a platform (reads the graph its runtime executes)
ENV_VAR = "ARCHCAST_PREDICTORS"
DEFAULT_PLATFORM = "ort-cpu-1t"


def shipped_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "checkpoints"


def user_dir() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("archcast")) / "predictors"


def predictor_dir_for(platform_name: str, *, user: bool = True) -> Path:
    """Directory a predictor for ``platform_name`` is saved to (user dir, or the shipped dir)."""
    if not platform_name or any(c.isspace() or c in "/\\" for c in platform_name):
        raise InvalidInputError(f"platform name must be non-empty without spaces or slashes; got {platform_name!r}")
    return (user_dir() if user else shipped_dir()) / f"{PREFIX}{platform_name}"


def kernel_predictor_dir(platform_name: str | None = None, *, user: bool | None = None) -> Path | None:
    """The kernel-level predictor directory of a platform (default ort-cpu-1t): with ``user=None``
    the user one if it exists, else the shipped one, else None; with ``user=True/False`` the path
    it is saved to."""
    name = platform_name or DEFAULT_PLATFORM
    predictor_dir_for(name)  # validates the name
    if user is not None:
        return (user_dir() if user else shipped_dir()) / f"{KERNEL_PREFIX}{name}"
    for root in (user_dir(), shipped_dir()):
        d = root / f"{KERNEL_PREFIX}{name}"
        if (d / "config.json").is_file():
            return d
    return None


def available_platforms() -> dict[str, Path]:
    """Platform name -> predictor directory (user predictors override shipped ones)."""
    found: dict[str, Path] = {}
    for root in (shipped_dir(), user_dir()):
        if root.is_dir():
            for d in sorted(root.iterdir()):
                if d.name.startswith(PREFIX) and (d / "config.json").is_file():
                    found[d.name[len(PREFIX):]] = d
    return found


def resolve_predictor_dir(platform: str | None = None, path: str | Path | None = None) -> Path:
    """The checkpoint directory for ``path`` (explicit) or ``platform`` (default: ort-cpu-1t).

    Raises:
        InvalidInputError: no predictor for that platform (lists the platforms that have one).
    """
    if path is not None:
        p = Path(path)
        if not (p / "config.json").is_file():
            raise InvalidInputError(f"predictor directory {str(p)!r} has no config.json")
        return p
    name = platform or DEFAULT_PLATFORM
    have = available_platforms()
    if name not in have:
        listing = ", ".join(sorted(have)) or "none"
        raise InvalidInputError(
            f"no latency predictor for platform {name!r}; platforms with one: {listing} "
            f"(make one with: archcast adapt --platform {name}, kernel-level for ONNX models; "
            "add --predictor archcast for the network-level one)")
    return have[name]


def load_platform_predictor(platform: str | None = None, path: str | Path | None = None):
    """The :class:`~archcast.predictors.latency.ArchcastLatency` for a platform (or a directory)."""
    from archcast.predictors.latency.archcast import ArchcastLatency

    return ArchcastLatency.load(resolve_predictor_dir(platform, path))


# ------------------------------------------------------------------------------ cell predictors
DEFAULT_CELL_CHECKPOINT = "nb201-accuracy"


def load_cell_predictor(checkpoint: str | Path | None = None):
    """The cell accuracy predictor in ``checkpoint`` (default: the shipped NB201 one)."""
    from archcast.predictors.accuracy.transformer import TransformerPredictor

    path = Path(checkpoint) if checkpoint else shipped_dir() / DEFAULT_CELL_CHECKPOINT
    if not path.is_dir():
        raise InvalidInputError(f"checkpoint directory {str(path)!r} does not exist")
    return TransformerPredictor.load(path)
