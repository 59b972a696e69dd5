"""Model preparation: ONNX/IR -> served uint8-in, label-out IR (FP32 or NNCF INT8) + its model card."""
