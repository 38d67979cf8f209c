"""PyTorch frontend: a ``torch.nn.Module`` → :class:`~archcast.graph.NetGraph` via ONNX.

The module is exported in memory with the TorchScript exporter (``dynamo=False``, opset 17, eval
mode, constant folding on, so Conv+BatchNorm pairs are fused into one Conv as at deployment) and the
bytes are read by :func:`archcast.frontends.onnx.load_onnx`. Only this module imports torch.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import torch

from archcast.errors import InvalidInputError
from archcast.frontends.onnx import load_onnx
from archcast.graph.ir import NetGraph

OPSET = 17


def export_onnx_bytes(module: torch.nn.Module, example_input: Any, *, opset: int = OPSET) -> bytes:
    """ONNX bytes of ``module`` run on ``example_input`` (a tensor or a tuple of tensors).

    Inputs are named ``input`` (one tensor) or ``input0``, ``input1``... with the example's static
    shapes. The module is exported in eval mode; its training flag is restored afterwards.
    """
    if not isinstance(module, torch.nn.Module):
        raise InvalidInputError(f"load_torch needs a torch.nn.Module; got {type(module).__name__}")
    args = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    if not args or not all(isinstance(a, torch.Tensor) for a in args):
        raise InvalidInputError(
            "example_input must be a tensor or a tuple of tensors; got "
            + ", ".join(type(a).__name__ for a in args or [example_input])
        )
    names = ["input"] if len(args) == 1 else [f"input{i}" for i in range(len(args))]
    was_training = module.training
    buf = io.BytesIO()
    try:
        module.eval()
        # No torch.no_grad(): under it nn.MultiheadAttention takes a fused path ONNX cannot express.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=FutureWarning)
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(module, args, buf, opset_version=opset, dynamo=False, input_names=names,
                              do_constant_folding=True)
    except Exception as e:  # noqa: BLE001 - the user's forward() or the exporter failed: say which and why
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise InvalidInputError(
            f"cannot export {type(module).__name__} to ONNX (opset {opset}): {type(e).__name__}: {reason}"
        ) from None
    finally:
        module.train(was_training)
    return buf.getvalue()


def load_torch(module: torch.nn.Module, example_input: Any, *, name: str | None = None) -> NetGraph:
    """Read ``module`` (traced on ``example_input``) as a validated ``kind="network"`` graph.

    ``name`` defaults to the module's class name; ``meta["source"]`` is ``"torch"``.
    """
    graph = load_onnx(export_onnx_bytes(module, example_input), name=name or type(module).__name__)
    graph.meta["source"] = "torch"
    return graph


__all__ = ["OPSET", "export_onnx_bytes", "load_torch"]
