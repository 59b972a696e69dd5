"""Dataset side of the harness: val_map reading, reference preprocessing,
the preprocessed cache, calibration lists and the bundled demo dataset.

Nothing here imports OpenVINO or LoadGen; data flows out of this package only.
"""
