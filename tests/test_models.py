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
    size = 32 if name == "decinet_demo" else 224
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
