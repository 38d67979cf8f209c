"""Latency predictors for whole networks (task ``latency`` of :mod:`archcast.predictors`).

All follow :class:`archcast.predictors.base.Predictor` (``fit(graphs, y, val_graphs, val_y)`` in
milliseconds, ``predict(graphs)`` in milliseconds; epochs chosen on the validation graphs only).

==================  ==========================================================================
``archcast``        :class:`~archcast.models.latency_net.LatencyNet`: archcast-v1 tokens, edge-list
                    graph-aided attention, per-operator log-latency, sum readout, graph features,
                    squared-log-ratio loss, deep ensemble (default 3) for the interval.
``narformer-v2``    the reference network as published: narformer-v2 tokens, dense graph-aided
                    attention, 2 blocks x 512, sum readout + graph features, softplus output,
                    relative MSE, Adam 1e-3, 10 % warm-up + linear decay, batch 16, 50 epochs.
``nnlp``            NNLP-style: two torch-geometric ``SAGEConv`` layers over archcast-v1 tokens,
                    sum pooling, MLP head, log-MSE.
``gbdt``            LightGBM on :func:`~archcast.tokenizer.tabular.graph_table` (log costs, op
                    histogram, per-op FLOPs shares), target log latency.
``flops-linear``    ``log y = a + b log FLOPs`` (least squares).
``flops-mem-linear``  ``y = a + b FLOPs + c memory`` (non-negative, fitted to relative error).
==================  ==========================================================================
"""
