"""Numbers that define the ImageNet and COCO conventions (and so the card defaults), in one place."""

from __future__ import annotations

# MLCommons reference ResNet50 (resnet50_v1.onnx): RGB mean subtraction, no std.
MLPERF_RESNET50_MEAN = (123.68, 116.78, 103.94)
MLPERF_RESNET50_STD = (1.0, 1.0, 1.0)

# torchvision-style models: mean/std in 0..255 units (the 0..1 values x 255).
TORCHVISION_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
TORCHVISION_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

# The reference resizes the short side to int(100 * crop / 87.5), i.e. 256 for 224.
REFERENCE_CROP_PCT = 0.875


# COCO detection: the 80 classes a COCO-trained detector outputs are the 80 category ids in use
# out of 1..90 (ids 12, 26, 29, 30, 45, 66, 68, 69, 71 and 83 were never annotated).
COCO_UNUSED_CATEGORY_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
COCO80_CATEGORY_IDS = tuple(i for i in range(1, 91) if i not in COCO_UNUSED_CATEGORY_IDS)
# Ultralytics-style letterbox grey and the MLCommons reference's detection settings
# (Ultralytics predict(conf=0.001) with its default IoU 0.7 and 300 detections per image).
LETTERBOX_PAD = 114
CONF_THRESHOLD = 0.001
IOU_THRESHOLD = 0.7
MAX_DETECTIONS = 300
# YOLO-style detectors take RGB in 0..1: mean 0, std 255 in the cache's 0..255 pixel units.
YOLO_MEAN = (0.0, 0.0, 0.0)
YOLO_STD = (255.0, 255.0, 255.0)
