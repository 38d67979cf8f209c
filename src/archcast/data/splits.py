"""Every split protocol: random and isomorphism-class-preserving cell splits, the latency
benchmark's in-family / leave-one-family-out splits and per-family caps, and the small-budget
train/validation split of adaptation.

Sizes are counts of cells (ints) or shares of all cells (floats in (0, 1)); the test split is
everything left. All functions return sorted int64 index arrays and are deterministic in ``seed``.
"""

from __future__ import annotations

import hashlib

import numpy as np

from archcast.errors import InvalidInputError

Split = tuple[np.ndarray, np.ndarray, np.ndarray]


def _count(size: int | float, n: int, name: str) -> int:
    if isinstance(size, (float, np.floating)):
        if not 0 < size < 1:
            raise InvalidInputError(f"{name}={size!r}: a share must lie in (0, 1); a cell count must be an int")
        return int(round(size * n))
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise InvalidInputError(f"{name}={size!r}: expected a cell count >= 0 or a share in (0, 1)")
    return int(size)


def _sizes(n: int, train_size: int | float, val_size: int | float) -> tuple[int, int]:
    tr, va = _count(train_size, n, "train_size"), _count(val_size, n, "val_size")
    if tr + va > n:
        raise InvalidInputError(f"train_size {tr} + val_size {va} exceed the {n} cells available")
    return tr, va


def random_split(n: int, train_size: int | float, val_size: int | float, seed: int = 0) -> Split:
    """Random ``(train, val, test)`` indices into ``range(n)``; test holds all the rest.

    >>> [len(s) for s in random_split(10, 5, 2, seed=0)]
    [5, 2, 3]
    """
    tr, va = _sizes(n, train_size, val_size)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[:tr]), np.sort(perm[tr : tr + va]), np.sort(perm[tr + va :])


def group_split(groups: np.ndarray, train_size: int | float, val_size: int | float, seed: int = 0) -> Split:
    """Like :func:`random_split` but every group (isomorphism class) falls on one side.

    Groups are shuffled and assigned whole to train until it holds at least ``train_size`` cells
    (skipping a group that would overshoot by more than it would undershoot), then likewise to
    val; the rest is test. Sizes therefore match within about one group's size.
    """
    g = np.asarray(groups)
    if g.ndim != 1:
        raise InvalidInputError(f"groups must be a 1-D array of group ids; got shape {g.shape}")
    n = len(g)
    tr, va = _sizes(n, train_size, val_size)
    uniq, inv, counts = np.unique(g, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(uniq))
    side = np.full(len(uniq), 2, dtype=np.int64)  # 0 train, 1 val, 2 test
    filled = [0, 0]
    targets = (tr, va)
    for u in order:
        c = int(counts[u])
        for s in (0, 1):
            need = targets[s] - filled[s]
            if need > 0 and (c <= need or c - need < need):
                side[u] = s
                filled[s] += c
                break
    cell_side = side[inv]
    return tuple(np.flatnonzero(cell_side == s).astype(np.int64) for s in (0, 1, 2))  # type: ignore[return-value]


# ------------------------------------------------------------------------------ latency data sets
def in_family_split(families: np.ndarray, seed: int, test_frac: float, val_frac: float) -> Split:
    """Latency "in-family": a random ``test_frac`` of every family is test; of the pooled rest a
    random ``val_frac`` (at least 2) validates. Returns ``(train, val, test)``."""
    rng = np.random.default_rng([seed, 201])
    train, test = [], []
    for f in sorted(set(families.tolist())):
        idx = rng.permutation(np.flatnonzero(families == f))
        k = max(1, int(round(test_frac * len(idx))))
        test.append(idx[:k])
        train.append(idx[k:])
    train_all = rng.permutation(np.concatenate(train))
    n_val = max(2, int(round(val_frac * len(train_all))))
    return np.sort(train_all[n_val:]), np.sort(train_all[:n_val]), np.sort(np.concatenate(test))

def lofo_split(families: np.ndarray, family: str, seed: int, val_frac: float) -> Split:
    """Leave-one-family-out: every model of ``family`` is test; the other families train, a random
    ``val_frac`` of them (at least 2) validates. Returns ``(train, val, test)``."""
    rng = np.random.default_rng([seed, 7, int(hashlib.sha1(family.encode()).hexdigest()[:8], 16)])
    rest = rng.permutation(np.flatnonzero(families != family))
    n_val = max(2, int(round(val_frac * len(rest))))
    return np.sort(rest[n_val:]), np.sort(rest[:n_val]), np.flatnonzero(families == family)

def cap_per_family(idx: np.ndarray, families: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """At most ``cap`` indices of each family (a random subset, fixed by ``seed``)."""
    if not cap:
        return idx
    rng = np.random.default_rng([seed, 11])
    keep = []
    for f in sorted(set(families[idx].tolist())):
        members = idx[families[idx] == f]
        keep.append(members if len(members) <= cap else rng.choice(members, cap, replace=False))
    return np.sort(np.concatenate(keep))


def split_budget(n: int, val_frac: float = 0.2, seed: int = 0, *, min_val: int = 2,
                 min_train: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``(train indices, validation indices)`` of ``n`` measured graphs: a random ``val_frac``
    (at least 2) is held out to choose the epoch; at least 2 remain for training."""
    if not 0.0 < val_frac < 1.0:
        raise InvalidInputError(f"val_frac must be in (0, 1); got {val_frac!r}")
    n_val = max(min_val, int(round(val_frac * n)))
    if n - n_val < min_train:
        raise InvalidInputError(f"{n} measured graphs are too few to fine-tune: need at least "
                                f"{min_val + min_train} ({min_val} held out for validation)")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


# the groups of the leave-one-group-out protocol (issue 11): structure classes that share little
FAMILY_GROUPS: dict[str, str] = {
    **{f: "cnn" for f in ("alexnet", "bcn_cnn", "convmixer", "convnext", "convnext_large", "densenet", "efficientnet",
                          "fpn_detector", "ghostnet", "googlenet", "linosc_cnn", "mnasnet", "mobilenetv2", "mobilenetv3",
                          "nb201", "nfnet", "regnet", "repvgg", "resnet", "resnext", "shufflenet", "squeezenet",
                          "unet", "vgg")},
    **{f: "vision-transformer" for f in ("vit", "vit_large", "swin", "swin_large", "mlpmixer", "coatnet",
                                         "efficientformer", "sequencer")},
    **{f: "sequence" for f in ("bert", "gpt", "moe_gpt", "rnn", "mamba")},
    **{f: "graph" for f in ("gcn", "graphsage")},
}
GROUPS = ("cnn", "vision-transformer", "sequence", "graph")


def family_groups(families: np.ndarray, table: dict[str, str] | None = None) -> np.ndarray:
    """The group of every entry of ``families`` (:data:`FAMILY_GROUPS` unless ``table``); a family
    without a group is an error naming it."""
    table = FAMILY_GROUPS if table is None else table
    missing = sorted(set(np.asarray(families).tolist()) - set(table))
    if missing:
        raise InvalidInputError(f"families {missing} have no group for leave-one-group-out; known groups: "
                                f"{', '.join(GROUPS)} (add them to archcast.data.splits.FAMILY_GROUPS)")
    return np.array([table[f] for f in np.asarray(families).tolist()])


def logo_split(families: np.ndarray, group: str, seed: int, val_frac: float,
               table: dict[str, str] | None = None) -> Split:
    """Leave-one-group-out: every model of a family in ``group`` is test; the other groups train, a
    random ``val_frac`` of them (at least 2) validates (the hardest split: unseen kinds of network)."""
    groups = family_groups(families, table)
    if group not in set(groups.tolist()):
        raise InvalidInputError(f"group {group!r} has no models here; present: {sorted(set(groups.tolist()))}")
    rng = np.random.default_rng([seed, 13, int(hashlib.sha1(group.encode()).hexdigest()[:8], 16)])
    rest = rng.permutation(np.flatnonzero(groups != group))
    n_val = max(2, int(round(val_frac * len(rest))))
    return np.sort(rest[n_val:]), np.sort(rest[:n_val]), np.flatnonzero(groups == group)
