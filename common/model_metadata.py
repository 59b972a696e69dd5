"""Where a model file carries its own card (export writes it, prepare reads it)."""

# ONNX metadata_props key; OpenVINO exposes it as rt_info ["framework", CARD_METADATA_KEY].
CARD_METADATA_KEY = "mlperf_cpu.card"
