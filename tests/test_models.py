"""Every registered architecture builds, converts to OpenVINO, and matches its declared shape."""

import json
from pathlib import Path

import openvino as ov
import pytest

import models
from models._macs import count_params
from common.errors import ConfigError


def test_resnet50_is_v1_5_with_torchvision_sizes() -> None:
    net = models.create("resnet50")
    assert count_params(net) == 25_557_032
    assert net.layer2[0].conv2.stride == (2, 2) and net.layer2[0].conv1.stride == (1, 1)


def test_unknown_name_suggests() -> None:
    with pytest.raises(ConfigError, match="did you mean 'resnet50'"):
        models.create("resnet05")


@pytest.fixture(scope="session")
def architectures(session_dir: Path) -> Path:
    """Where each architecture is exported once per session (export_architecture reuses a file it wrote)."""
    return session_dir / "architectures"


@pytest.mark.parametrize("name", models.list_models())
def test_registered_model_exports_with_its_card(name: str, architectures: Path) -> None:
    """Each architecture is traced once: the exported graph has the registered card's shapes and carries
    the card, with its counted MACs and parameters."""
    from common.model_metadata import CARD_METADATA_KEY
    from models.export import export_architecture

    card = models.default_card(name)
    model = ov.Core().read_model(str(export_architecture(name, architectures)))
    assert len(model.inputs) == 1
    in_shape = model.inputs[0].get_partial_shape()
    assert in_shape.rank.get_length() == 4 and in_shape[0].is_dynamic
    assert [d.get_length() for d in list(in_shape)[1:]] == [3, card.input_size, card.input_size]
    out_shape = model.outputs[0].get_partial_shape()
    assert out_shape.rank.get_length() == 2 and out_shape[1].get_length() == card.num_classes
    meta = json.loads(model.get_rt_info(["framework", CARD_METADATA_KEY]).astype(str))
    assert (meta["input_size"], meta["num_classes"]) == (card.input_size, card.num_classes)
    assert tuple(meta["mean"]) == card.mean and tuple(meta["std"]) == card.std
    assert meta["params"] > 0 and meta["macs"] > 0
    if name.startswith("decinet_") and name != "decinet_demo":
        assert meta["macs"] >= 1.0e9, f"{name}: DeciNet-style ImageNet models are >= 1.0 GMACs"
