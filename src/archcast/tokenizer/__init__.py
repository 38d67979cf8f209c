"""Tokenizers: graphs -> arrays a predictor can read.

Whole networks go through a registered :class:`NetworkTokenizer` (``get_tokenizer("archcast-v1")``)
into :class:`TokenizedGraph` objects, batched by :func:`collate`; NAS cells go through
:func:`cell_arrays`. Importing this package never imports torch or onnx.
"""

from archcast.tokenizer.cell import CellArrays, cell_arrays
from archcast.tokenizer.network import (
    TOKENIZERS,
    UNKNOWN_OP,
    ArchcastV1Tokenizer,
    NarFormerV2Tokenizer,
    NetworkTokenizer,
    TokenizedGraph,
    collate,
    get_tokenizer,
)

__all__ = [
    "TOKENIZERS",
    "UNKNOWN_OP",
    "ArchcastV1Tokenizer",
    "CellArrays",
    "NarFormerV2Tokenizer",
    "NetworkTokenizer",
    "TokenizedGraph",
    "cell_arrays",
    "collate",
    "get_tokenizer",
]
