"""The hardware-aware model search: which model is fastest on this CPU at a stated accuracy.

A stage after ``pipeline`` (it prepares and measures models through it): ``zoo`` (the zoo
table, INT8 drops, qualifying and Pareto logic), ``measure`` (cached INT8 speed on this host).
"""
