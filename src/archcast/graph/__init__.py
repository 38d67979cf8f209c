"""The typed graph IR (:class:`NetGraph`) and per-operator cost specs."""

from archcast.graph.ir import GRAPH_KINDS, IR_VERSION, NetGraph, Node

__all__ = ["GRAPH_KINDS", "IR_VERSION", "NetGraph", "Node"]
