"""The measurement store's tables (SQLAlchemy 2 ORM). Units are in the column names.

* ``graphs``: one row per distinct graph, keyed by :meth:`NetGraph.fingerprint`, with its
  provenance (zoo family, seed, generator version and config: enough to regenerate the ONNX), its
  size (nodes, FLOPs, params, memory bytes) and the IR as zlib-compressed JSON. Weight-free ONNX is
  kept (``onnx_zlib``) only for graphs that cannot be regenerated (imported files). A zoo sample
  whose export failed gets a stub row keyed ``sample-<hash>`` (no IR) so that its failure can be
  recorded and resumed past.
* ``platforms``: :class:`archcast.profile.Platform` fields, keyed by ``platform_id``.
* ``measurements``: one row per measurement attempt. For each (graph, platform, batch size) exactly
  one row has ``is_current`` true (a partial unique index); older rows stay as history.
* ``sample_aliases``: zoo samples whose graph equals an already stored graph (another seed gave
  the same network): a resumed run skips them without exporting again.
* ``kernel_profiles``: the measured per-kernel profile of a (graph, platform, batch size): the
  collection pass that gave it (``pass_id``, the last pass it combines) and how many passes it
  combines, where it came from (``source``: ``archcast`` from the pass protocol, ``dataset`` from
  ``archcast db import-kernels``) and its ``coverage`` (kernel sum / the profiled run, wall). One
  profile per key: a new profile replaces the old one and its kernels (it is derived from the
  per-pass kernel tables, which the campaign directory and the data set keep).
* ``kernel_times``: the kernels of a profile, one row each: kernel name (a node of the runtime's
  optimised graph), op type, and ``kernel_us``, the data set's per-kernel label statistic (median
  over the label passes of the per-pass minimum over the profiled runs; microseconds per run).
* ``api_tokens``: access tokens of ``archcast serve`` as SHA-256 hex digests (never the token),
  each with a name and a scope (``read`` or ``write``).
* ``archcast_meta``: key/value, holds ``schema_version`` (bumped only for incompatible changes).

Every change to these tables needs an Alembic revision in ``archcast/store/migrations/versions``
(``python -m archcast.store.migrate new "what changed"`` writes one); a test upgrades an empty
database to the head revision and compares it with this metadata.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = "1"
STATUSES = ("ok", "failed")
TOKEN_SCOPES = ("read", "write")


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    __tablename__ = "archcast_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class GraphRow(Base):
    __tablename__ = "graphs"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    family: Mapped[str | None] = mapped_column(String(128))
    seed: Mapped[int | None] = mapped_column(BigInteger)
    generator_version: Mapped[str | None] = mapped_column(String(32))
    generator_config: Mapped[str | None] = mapped_column(Text)  # JSON, sorted keys
    name: Mapped[str] = mapped_column(String(256), default="")
    n_nodes: Mapped[int | None] = mapped_column(Integer)
    flops: Mapped[int | None] = mapped_column(BigInteger)
    params: Mapped[int | None] = mapped_column(BigInteger)
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    ir_json: Mapped[bytes | None] = mapped_column(LargeBinary)  # zlib(NetGraph.to_json())
    onnx_zlib: Mapped[bytes | None] = mapped_column(LargeBinary)  # zlib(weight-free ONNX), not regenerable only
    created: Mapped[datetime] = mapped_column(DateTime)  # UTC

    __table_args__ = (Index("ix_graphs_family_seed", "family", "seed"),)


class PlatformRow(Base):
    __tablename__ = "platforms"

    platform_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    backend: Mapped[str] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(256))
    runtime: Mapped[str] = mapped_column(String(64))
    runtime_version: Mapped[str] = mapped_column(String(64))
    threads: Mapped[int] = mapped_column(Integer)
    precision: Mapped[str] = mapped_column(String(16))
    graph_opt_level: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime] = mapped_column(DateTime)  # UTC


class MeasurementRow(Base):
    __tablename__ = "measurements"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    graph_fingerprint: Mapped[str] = mapped_column(String(64), ForeignKey("graphs.fingerprint"))
    platform_id: Mapped[str] = mapped_column(String(32), ForeignKey("platforms.platform_id"))
    batch_size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(8))
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms_min: Mapped[float | None] = mapped_column(Float)
    latency_ms_median: Mapped[float | None] = mapped_column(Float)
    latency_ms_mean: Mapped[float | None] = mapped_column(Float)
    latency_ms_p90: Mapped[float | None] = mapped_column(Float)
    latency_ms_std: Mapped[float | None] = mapped_column(Float)
    latency_cv: Mapped[float | None] = mapped_column(Float)
    n_runs: Mapped[int | None] = mapped_column(Integer)
    warmup_runs: Mapped[int | None] = mapped_column(Integer)
    input_shapes: Mapped[str | None] = mapped_column(Text)  # JSON {name: shape}
    node_profile: Mapped[str | None] = mapped_column(Text)  # JSON summary, see NodeProfile.summary
    session_s: Mapped[float | None] = mapped_column(Float)
    measure_s: Mapped[float | None] = mapped_column(Float)
    host: Mapped[str | None] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(32), default="archcast")  # archcast | nnlqp
    measured_at: Mapped[datetime] = mapped_column(DateTime)  # UTC
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    # the measurement protocol of archcast.collect (all nullable: rows of plain `archcast profile` leave them empty)
    cpu_ms_min: Mapped[float | None] = mapped_column(Float)  # thread CPU time per run, 1-thread platforms
    cpu_ms_median: Mapped[float | None] = mapped_column(Float)
    cpu_cv: Mapped[float | None] = mapped_column(Float)
    pass_id: Mapped[str | None] = mapped_column(String(64))  # the collection pass that measured the row
    speed_index: Mapped[float | None] = mapped_column(Float)  # canary speed of the machine then (1 = reference)
    role: Mapped[str | None] = mapped_column(String(16))  # None: a model; "canary": a speed-reference model
    push_id: Mapped[str | None] = mapped_column(String(64))  # client key of a pushed row: a retried push is a no-op

    __table_args__ = (
        CheckConstraint("status IN ('ok', 'failed')", name="ck_measurements_status"),
        # exactly one current row per (graph, platform, batch): a partial unique index
        Index("uq_measurements_current", "graph_fingerprint", "platform_id", "batch_size", unique=True,
              sqlite_where=text("is_current = 1"), postgresql_where=text("is_current")),
        Index("ix_measurements_platform", "platform_id", "batch_size", "is_current"),
        Index("ix_measurements_graph", "graph_fingerprint"),
        Index("ix_measurements_platform_current_id", "platform_id", "is_current", "id"),  # pages of a platform
        Index("uq_measurements_push_id", "push_id", unique=True),
    )


class SampleAliasRow(Base):
    __tablename__ = "sample_aliases"

    sample_key: Mapped[str] = mapped_column(String(64), primary_key=True)  # archcast.store.sample_key
    family: Mapped[str] = mapped_column(String(128))
    seed: Mapped[int] = mapped_column(BigInteger)
    generator_version: Mapped[str] = mapped_column(String(32))
    generator_config: Mapped[str] = mapped_column(Text)
    graph_fingerprint: Mapped[str] = mapped_column(String(64), ForeignKey("graphs.fingerprint"))
    created: Mapped[datetime] = mapped_column(DateTime)  # UTC


class KernelProfileRow(Base):
    __tablename__ = "kernel_profiles"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    graph_fingerprint: Mapped[str] = mapped_column(String(64), ForeignKey("graphs.fingerprint"))
    platform_id: Mapped[str] = mapped_column(String(32), ForeignKey("platforms.platform_id"))
    batch_size: Mapped[int] = mapped_column(Integer)
    pass_id: Mapped[str | None] = mapped_column(String(64))  # the last collection pass the profile combines
    n_passes: Mapped[int | None] = mapped_column(Integer)  # passes combined (median over them)
    n_kernels: Mapped[int] = mapped_column(Integer)
    kernel_sum_us: Mapped[float] = mapped_column(Float)  # sum of kernel_us of its kernels
    coverage: Mapped[float | None] = mapped_column(Float)  # kernel sum / profiled run (wall), median over passes
    source: Mapped[str] = mapped_column(String(32), default="archcast")  # archcast | dataset
    measured_at: Mapped[datetime] = mapped_column(DateTime)  # UTC, when it was written

    __table_args__ = (
        Index("uq_kernel_profiles_key", "graph_fingerprint", "platform_id", "batch_size", unique=True),
    )


class KernelTimeRow(Base):
    __tablename__ = "kernel_times"

    profile_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                            ForeignKey("kernel_profiles.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0 = the slowest kernel
    kernel: Mapped[str] = mapped_column(String(256))
    op_type: Mapped[str] = mapped_column(String(128))
    kernel_us: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("uq_kernel_times_name", "profile_id", "kernel", unique=True),)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)  # hex digest of the token
    name: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(8))
    created: Mapped[datetime] = mapped_column(DateTime)  # UTC

    __table_args__ = (
        CheckConstraint("scope IN ('read', 'write')", name="ck_api_tokens_scope"),
        Index("uq_api_tokens_name", "name", unique=True),
    )


__all__ = ["SCHEMA_VERSION", "STATUSES", "TOKEN_SCOPES", "ApiTokenRow", "Base", "GraphRow", "KernelProfileRow",
           "KernelTimeRow", "MeasurementRow", "MetaRow", "PlatformRow", "SampleAliasRow"]
