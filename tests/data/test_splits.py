import numpy as np
import pytest

from archcast.data.splits import (
    cap_per_family,
    group_split,
    in_family_split,
    lofo_split,
    random_split,
    split_budget,
)
from archcast.errors import InvalidInputError


def _check_partition(parts, n):
    allidx = np.concatenate(parts)
    assert len(allidx) == n and len(np.unique(allidx)) == n  # disjoint and covering
    assert all(p.dtype == np.int64 and (np.diff(p) > 0).all() for p in parts)


def test_random_split_sizes_and_determinism():
    tr, va, te = random_split(15625, 781, 200, seed=3)
    assert (len(tr), len(va), len(te)) == (781, 200, 14644)
    _check_partition((tr, va, te), 15625)
    assert np.array_equal(tr, random_split(15625, 781, 200, seed=3)[0])
    assert not np.array_equal(tr, random_split(15625, 781, 200, seed=4)[0])
    assert [len(p) for p in random_split(100, 0.8, 0.1)] == [80, 10, 10]


def test_group_split_keeps_groups_together():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(600), rng.integers(1, 6, size=600))
    rng.shuffle(groups)
    tr, va, te = group_split(groups, 300, 100, seed=1)
    _check_partition((tr, va, te), len(groups))
    sides = [set(groups[p].tolist()) for p in (tr, va, te)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert abs(len(tr) - 300) <= 5 and abs(len(va) - 100) <= 5  # within one group's size


def test_group_split_on_nb201_classes():
    from archcast.data.analognas import load_analognas

    ds = load_analognas()
    tr, va, te = group_split(ds.groups, 781, 200, seed=0)
    assert abs(len(tr) - 781) <= 341 and abs(len(va) - 200) <= 341
    assert not set(ds.groups[tr]) & set(ds.groups[te])


@pytest.mark.parametrize(
    "args, message",
    [
        ((10, 8, 5), "train_size 8 \\+ val_size 5 exceed the 10 cells"),
        ((10, 1.5, 1), "train_size=1.5: a share must lie in \\(0, 1\\)"),
        ((10, -1, 1), "train_size=-1: expected a cell count"),
        ((10, 2, "3"), "val_size='3'"),
    ],
)
def test_bad_sizes(args, message):
    with pytest.raises(InvalidInputError, match=message):
        random_split(*args)
    with pytest.raises(InvalidInputError, match=message):
        group_split(np.arange(args[0]), *args[1:])


# ------------------------------------------------------------------------------ latency splits
def test_in_family_split_is_per_family_and_disjoint():
    fam = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 10)
    tr, va, te = in_family_split(fam, 0, 0.2, 0.1)
    assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
    assert len(tr) + len(va) + len(te) == len(fam)
    assert [int((fam[te] == f).sum()) for f in "abc"] == [10, 6, 2]
    again = in_family_split(fam, 0, 0.2, 0.1)
    assert all(np.array_equal(x, y) for x, y in zip((tr, va, te), again))
    assert not np.array_equal(te, in_family_split(fam, 1, 0.2, 0.1)[2])

def test_lofo_split_holds_out_exactly_one_family_and_cap():
    fam = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 10)
    tr, va, te = lofo_split(fam, "b", 0, 0.1)
    assert set(fam[te]) == {"b"} and len(te) == 30 and "b" not in set(fam[tr]) | set(fam[va])
    capped = cap_per_family(tr, fam, 8, 0)
    assert {f: int((fam[capped] == f).sum()) for f in "ac"} == {"a": 8, "c": min(8, int((fam[tr] == "c").sum()))}
    assert set(capped) <= set(tr)


def test_split_budget():
    tr, va = split_budget(50, 0.2, seed=0)
    assert len(va) == 10 and len(tr) == 40 and set(tr.tolist()) | set(va.tolist()) == set(range(50))
    tr, va = split_budget(5, 0.2)
    assert (len(tr), len(va)) == (3, 2)
    with pytest.raises(InvalidInputError, match="at least 4"):
        split_budget(3)
    with pytest.raises(InvalidInputError, match="val_frac"):
        split_budget(10, 1.0)


def test_every_zoo_family_has_a_group_and_logo_holds_out_whole_groups():
    from archcast.data.splits import FAMILY_GROUPS, GROUPS, family_groups, logo_split
    from archcast.zoo import FAMILIES, load_builtin_families

    load_builtin_families()
    builtin = {n for n in FAMILIES.names() if FAMILIES.get(n).__module__.startswith("archcast.zoo.")}
    assert len(builtin) >= 32 and builtin <= set(FAMILY_GROUPS) and set(FAMILY_GROUPS.values()) == set(GROUPS)
    fam = np.array(["resnet"] * 20 + ["vit"] * 10 + ["bert"] * 8 + ["gcn"] * 6 + ["swin"] * 4)
    tr, va, te = logo_split(fam, "vision-transformer", 0, 0.1)
    assert sorted(set(fam[te].tolist())) == ["swin", "vit"] and len(te) == 14
    assert not {"vit", "swin"} & (set(fam[tr].tolist()) | set(fam[va].tolist()))
    assert len(tr) + len(va) + len(te) == len(fam) and len(va) >= 2
    with pytest.raises(InvalidInputError, match="no group"):
        family_groups(np.array(["mystery"]))
    with pytest.raises(InvalidInputError, match="no models"):
        logo_split(fam, "graph-free", 0, 0.1)
