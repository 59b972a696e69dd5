"""A failure inside the harness fails the test with an error, never a hang.

Real LoadGen (default settings, no FromConfig) and real OpenVINO inference; the faults are
injected by small subclasses of our own QSL/SUT, the way a bug in them would behave.
"""

from pathlib import Path

import mlperf_loadgen as lg
import numpy as np
import openvino as ov
import pytest
from conftest import prepare_model

from dataset.cache import build_cache
from dataset.val_map import parse_val_map
from modelprep.card import load_card
from sut.engine import compile_model
from harness.profile import host_profile
from sut.qsl import SampleLibrary
from sut.sut import OfflineSUT


class ForgetfulQSL(SampleLibrary):
    """Claims to load samples but keeps none: every issued index is 'not loaded'."""

    def load_samples(self, indices: list[int]) -> None:
        pass


class BrokenResponder(OfflineSUT):
    """Its completion path raises, as a bug in response building would."""

    def _respond(self, slot: int, ids: np.ndarray, top1: np.ndarray) -> None:
        raise ValueError("response building exploded")


def _accuracy_test(tmp_path: Path, model: Path, demo: Path, qsl_cls: type, sut_cls: type) -> OfflineSUT:
    card = load_card(model)
    samples = parse_val_map(demo / "val" / "val_map.txt")[:40]
    cache = build_cache(demo / "val", samples, card.preprocess, tmp_path / "c", progress=False)
    qsl = qsl_cls(cache, 16)
    compiled, _ = compile_model(ov.Core(), model, card, host_profile().engine)
    sut = sut_cls(qsl, compiled, 4)
    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Offline
    settings.mode = lg.TestMode.AccuracyOnly
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(tmp_path)
    log_settings.enable_trace = False
    sut_h = lg.ConstructFastSUT(sut.issue_query, sut.flush_queries)
    qsl_h = lg.ConstructQSL(qsl.total_count, qsl.performance_count, qsl.load_samples, qsl.unload_samples)
    lg.StartTestWithLogSettings(sut_h, qsl_h, settings, log_settings, "")
    sut.close()
    lg.DestroyQSL(qsl_h)
    lg.DestroyFastSUT(sut_h)
    return sut


@pytest.fixture(scope="module")
def tiny_f32(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("tiny")
    return prepare_model(tiny_onnx, "f32", tmp / "m", tmp / "c")


def test_dispatcher_error_completes_and_reports(tmp_path: Path, tiny_f32: Path, demo_data: Path) -> None:
    sut = _accuracy_test(tmp_path, tiny_f32, demo_data, ForgetfulQSL, OfflineSUT)
    assert "was issued but not loaded" in str(sut.first_error())


def test_callback_error_completes_and_reports(tmp_path: Path, tiny_f32: Path, demo_data: Path) -> None:
    sut = _accuracy_test(tmp_path, tiny_f32, demo_data, SampleLibrary, BrokenResponder)
    assert "response building exploded" in str(sut.first_error())


def test_healthy_run_has_no_error(tmp_path: Path, tiny_f32: Path, demo_data: Path) -> None:
    sut = _accuracy_test(tmp_path, tiny_f32, demo_data, SampleLibrary, OfflineSUT)
    assert sut.first_error() is None
    assert (tmp_path / "mlperf_log_accuracy.json").stat().st_size > 1000
