"""Numbers that define the ImageNet conventions, in one place."""

from __future__ import annotations

# MLCommons reference ResNet50 (resnet50_v1.onnx): RGB mean subtraction, no std.
MLPERF_RESNET50_MEAN = (123.68, 116.78, 103.94)
MLPERF_RESNET50_STD = (1.0, 1.0, 1.0)

# torchvision-style models: mean/std in 0..255 units (the 0..1 values x 255).
TORCHVISION_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
TORCHVISION_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

# The reference resizes the short side to int(100 * crop / 87.5), i.e. 256 for 224.
REFERENCE_CROP_PCT = 0.875

