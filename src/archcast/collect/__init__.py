"""The measurement pipeline: zoo -> profile -> store -> data-set files.

* :mod:`~archcast.collect.runner` / :mod:`~archcast.collect.workers`: measure many models once
  each into the store, resumably, in worker processes (``archcast profile``);
* :mod:`~archcast.collect.passes`: the protocol of labels that hold still — passes in fresh
  processes, canary checkpoints and a speed index, re-measures on drift, further passes on
  disagreement, kernel profiles (``archcast profile --passes N --campaign DIR``);
* :mod:`~archcast.collect.labels`: from pass rows to labels, spreads, speed index, ablation;
* :mod:`~archcast.collect.export` (format 1) and :mod:`~archcast.collect.export_campaign`
  (format 2), :mod:`~archcast.collect.verify`, :mod:`~archcast.collect.retest`,
  :mod:`~archcast.collect.datasheet`: ``archcast dataset export|verify|retest|datasheet``.

Reading a data set is :mod:`archcast.data.latency_dataset`. Importing this package is cheap.
"""
