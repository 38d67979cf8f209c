"""``archcast db import-kernels DATASET_DIR``: a data set's kernel profiles into a store, once."""

from __future__ import annotations

from archcast.cli import main
from archcast.data.latency_dataset import KERNELS_FILE
from archcast.store import Store
from tests.collect.kernel_dataset import PLATFORM, make_kernel_dataset


def test_import_kernels_then_again_then_stats(tmp_path, capsys):
    ds, db = make_kernel_dataset(tmp_path / "ds"), tmp_path / "s.db"
    assert main(["db", "import-kernels", str(ds), "--db", str(db)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == ("read kernel profiles of 2 models (1 without kernels): 2 added, 0 replaced, "
                           "0 already stored; 2 graphs added")
    assert "import kernels" in err and "2/2" in err  # the progress bar
    assert main(["db", "import-kernels", str(ds), "--db", str(db), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "0 added, 0 replaced, 2 already stored; 0 graphs added" in out and err == ""
    assert main(["db", "stats", "--db", str(db)]) == 0
    assert "kernels      2 profiles" in capsys.readouterr().out
    first = (ds / "models.csv").read_text().splitlines()[1].split(",")[0]
    assert Store(db, create=False).kernel_profile(first, PLATFORM).source == "dataset"


def test_a_damaged_or_missing_kernel_table_is_one_line(tmp_path, capsys):
    ds, db = make_kernel_dataset(tmp_path / "ds"), tmp_path / "s.db"
    (ds / KERNELS_FILE).write_bytes(b"not xz")
    assert main(["db", "import-kernels", str(ds), "--db", str(db), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("archcast: error: ") and "kernels.csv.xz differs from the checksum" in err
    assert len(err.splitlines()) == 1
    (ds / KERNELS_FILE).unlink()
    assert main(["db", "import-kernels", str(ds), "--db", str(db), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "kernels.csv.xz does not exist; re-export the data set" in err and len(err.splitlines()) == 1
