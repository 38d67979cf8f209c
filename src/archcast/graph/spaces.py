"""NAS search spaces whose cells archcast reads as ``kind="cell"`` graphs.

A space declares its op vocabulary (op-type strings used in :class:`~archcast.graph.Node`) and the
largest number of nodes a cell graph of the space has. Every cell graph starts with one ``"input"``
node and ends with one ``"output"`` node; the op nodes sit in between, in topological order.
"""

from __future__ import annotations

from dataclasses import dataclass

from archcast.registry import Registry


@dataclass(frozen=True)
class SearchSpace:
    """An op vocabulary and a node budget.

    Attributes:
        name: registry name (``"nb201"``...).
        ops: op types of the op nodes, in the space's canonical order.
        max_nodes: most nodes (input and output included) a cell graph of the space has.
    """

    name: str
    ops: tuple[str, ...]
    max_nodes: int

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """All node op types: ``input``, ``output``, then the ops."""
        return ("input", "output") + self.ops


SPACES: Registry[SearchSpace] = Registry("search space")

# NAS-Bench-201: 4 feature nodes, 6 edges (j <- i, i < j), each edge carries one op. As an op graph:
# [input, the six edge-ops in NB201 string order (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2), output].
NB201 = SPACES.register(
    "nb201",
    SearchSpace("nb201", ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"), 8),
)
# NAS-Bench-101: up to 7 nodes (input, <= 5 ops, output), DAG given by an upper-triangular matrix.
NB101 = SPACES.register(
    "nb101", SearchSpace("nb101", ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"), 7)
)
# NAS-Bench-Graph: 4 GNN ops, each reading the input or an earlier op (the "link" list); ops whose
# output nobody reads feed the output node. Op names as in the nas_bench_graph package.
NASBENCH_GRAPH = SPACES.register(
    "nasbench-graph",
    SearchSpace(
        "nasbench-graph", ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip"), 6
    ),
)
