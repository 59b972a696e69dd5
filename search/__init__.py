"""The hardware-aware model search: which model is fastest on this CPU at a stated accuracy.

A stage after ``pipeline`` (it prepares and measures models through it): ``zoo`` (the zoo
table, INT8 drops, qualifying and Pareto logic), ``measure`` (cached INT8 speed on this host),
``survey`` (the zoo measured on this host), and the DeciNet-style search: ``space``,
``descriptors``, ``predict_accuracy``, ``predict_speed``, ``evolve``. The parts that build
torch models import ``models`` lazily.
"""
