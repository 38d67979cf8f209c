"""archcast: predict a neural network's latency and accuracy from its graph alone.

Importing archcast is cheap: torch, onnx and the data sets load only when used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
