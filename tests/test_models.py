"""Every registered architecture builds, converts to OpenVINO, and matches its declared shape."""

import openvino as ov
import pytest
import torch

import models
from models._macs import count_macs, count_params
from common.errors import ConfigError


@pytest.mark.parametrize("name", models.list_models())
def test_registered_model_converts(name: str) -> None:
    torch.manual_seed(0)
    net = models.create(name).eval()
    size = models.default_card(name).input_size
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        out = net(x)
    ov_model = ov.convert_model(net, example_input=x)
    assert list(ov_model.outputs[0].get_partial_shape().get_min_shape())[1:] == [out.shape[1]]
    macs = count_macs(net, size)
    assert count_params(net) > 0 and macs > 0
    if name.startswith("decinet_") and name != "decinet_demo":
        assert macs >= 1.0e9, f"{name}: DeciNet-style ImageNet models are >= 1.0 GMACs"


def test_resnet50_is_v1_5_with_torchvision_sizes() -> None:
    net = models.create("resnet50")
    assert count_params(net) == 25_557_032
    assert net.layer2[0].conv2.stride == (2, 2) and net.layer2[0].conv1.stride == (1, 1)


def test_unknown_name_suggests() -> None:
    with pytest.raises(ConfigError, match="did you mean 'resnet50'"):
        models.create("resnet05")


@pytest.mark.parametrize("name", models.list_models())
def test_exported_ir_matches_registered_card(name: str, tmp_path) -> None:
    """export_architecture writes the registered card, and the exported graph really has its shape."""
    import json

    from common.model_metadata import CARD_METADATA_KEY
    from models.export import export_architecture

    card = models.default_card(name)
    path = export_architecture(name, tmp_path)
    model = ov.Core().read_model(str(path))
    assert len(model.inputs) == 1
    in_shape = model.inputs[0].get_partial_shape()
    assert in_shape.rank.get_length() == 4 and in_shape[0].is_dynamic
    assert [d.get_length() for d in list(in_shape)[1:]] == [3, card.input_size, card.input_size]
    out_shape = model.outputs[0].get_partial_shape()
    assert out_shape.rank.get_length() == 2 and out_shape[1].get_length() == card.num_classes
    meta = json.loads(model.get_rt_info(["framework", CARD_METADATA_KEY]).astype(str))
    assert (meta["input_size"], meta["num_classes"]) == (card.input_size, card.num_classes)
    assert tuple(meta["mean"]) == card.mean and tuple(meta["std"]) == card.std
