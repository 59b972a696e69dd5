"""The gather feed: the compiled model gathers its batch from the QSL's bank (real OpenVINO, real
LoadGen, the tiny and demo models, the demo images' cache).

- the wrapped model gives the labels of the served model run directly on the same rows;
- OpenVINO reads the bank in place (the request's bank tensor is our array's memory) and the bank
  is one array for the whole process, across load/unload cycles;
- a short last batch reports exactly its own samples, with the right labels;
- the responses are the request's fixed response objects, only their ids change.
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
from sut.config import EngineConfig
from sut.engine import InferencePool, compile_model
from sut.qsl import SampleLibrary
from sut.sut import OfflineSUT

ENGINE = EngineConfig(num_streams=2, num_threads=2, infer_requests=4, batch_size=8, pinning=True)


@pytest.fixture(scope="module")
def tiny_f32(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("feed")
    return prepare_model(tiny_onnx, "f32", tmp / "m", tmp / "c")


@pytest.fixture(scope="module")
def demo_cache(tiny_f32: Path, demo_data: Path, tmp_path_factory: pytest.TempPathFactory):
    samples = parse_val_map(demo_data / "val" / "val_map.txt")[:100]
    return build_cache(demo_data / "val", samples, load_card(tiny_f32).preprocess,
                       tmp_path_factory.mktemp("feedcache"), progress=False)


def _direct(model: Path, data: np.ndarray) -> np.ndarray:
    """The served IR (one input, no bank), compiled plainly and run one sample at a time."""
    compiled = ov.Core().compile_model(str(model / "model.xml"), "CPU")
    return np.concatenate([compiled(data[i:i + 1])[0].reshape(-1) for i in range(len(data))])


def _collecting_pool(model: Path, bank_rows: int, bank: np.ndarray | None = None):
    compiled, info = compile_model(ov.Core(), model, load_card(model), ENGINE, bank_rows=bank_rows)
    got: dict[int, int] = {}
    calls: list[tuple[int, int]] = []

    def done(slot: int, ids: np.ndarray, top1: np.ndarray) -> None:
        calls.append((slot, len(ids)))
        got.update(zip(ids.tolist(), top1.tolist()))

    def fail(ids: np.ndarray, error: BaseException) -> None:
        raise AssertionError(f"inference failed: {error}")

    return InferencePool(compiled, ENGINE.infer_requests, done, fail, bank), info, got, calls


def test_compiled_model_takes_bank_and_indices(tiny_f32: Path) -> None:
    compiled, info = compile_model(ov.Core(), tiny_f32, load_card(tiny_f32), ENGINE, bank_rows=24)
    assert [p.get_any_name() for p in compiled.inputs] == ["bank", "indices"]
    assert tuple(compiled.input("bank").shape) == (24, 3, 32, 32)
    assert tuple(compiled.input("indices").shape) == (8,)
    assert info.input_shape == (8, 3, 32, 32) and info.bank_rows == 24
    # The IR on disk stays the one-input served model.
    assert len(ov.Core().read_model(tiny_f32 / "model.xml").inputs) == 1


def test_gather_feed_equals_direct_inference_and_short_batch(tiny_f32: Path) -> None:
    pool, _, got, calls = _collecting_pool(tiny_f32, bank_rows=40)
    pool.load(np.random.default_rng(0).integers(0, 256, (40, 3, 32, 32), dtype=np.uint8))
    rows = np.random.default_rng(1).permutation(40).astype(np.int32)[:29]  # 3 full batches of 8 + 5
    ids = np.arange(1000, 1029, dtype=np.uint64)
    for i in range(0, 29, 8):
        pool.submit(rows[i:i + 8], ids[i:i + 8])
    pool.drain()
    assert sorted(n for _, n in calls) == [5, 8, 8, 8]  # the short batch reports only its own 5
    assert sorted(got) == ids.tolist()
    direct = _direct(tiny_f32, pool.bank[rows])
    np.testing.assert_array_equal([got[int(i)] for i in ids], direct)


def test_short_batch_after_full_batch_reports_its_own_labels(tiny_f32: Path) -> None:
    """The tail of a reused request's indices still holds the previous batch's rows: those
    outputs must never be reported, and the first n must be the new samples'."""
    pool, _, got, calls = _collecting_pool(tiny_f32, bank_rows=16)
    pool.load(np.random.default_rng(2).integers(0, 256, (16, 3, 32, 32), dtype=np.uint8))
    direct = _direct(tiny_f32, pool.bank)
    for _ in range(3):  # every request ran a full batch of rows 0..7 first
        for _ in range(ENGINE.infer_requests):
            pool.submit(np.arange(8, dtype=np.int32), np.arange(8, dtype=np.uint64))
        pool.drain()
    got.clear()
    calls.clear()
    pool.submit(np.array([15, 9, 12], np.int32), np.array([7, 8, 9], np.uint64))
    pool.drain()
    assert calls == [(calls[0][0], 3)] and got == {7: direct[15], 8: direct[9], 9: direct[12]}


def test_openvino_reads_the_bank_in_place(tiny_f32: Path) -> None:
    pool, _, _, _ = _collecting_pool(tiny_f32, bank_rows=16)
    for request in pool._requests:
        assert request.get_tensor("bank").data.ctypes.data == pool.bank.ctypes.data
    for request, out in zip(pool._requests, pool.outputs):
        assert request.get_output_tensor().data.ctypes.data == out.ctypes.data


def test_bank_is_one_array_across_load_unload_cycles(tiny_f32: Path, demo_cache) -> None:
    qsl = SampleLibrary(demo_cache, 32)
    address, bank = qsl.bank.ctypes.data, qsl.bank
    cache = np.asarray(demo_cache.open())
    for chunk in (list(range(0, 32)), list(range(50, 70)), list(range(99, 67, -1))):
        qsl.load_samples(chunk)
        assert qsl.bank is bank and qsl.bank.ctypes.data == address
        rows = qsl.rows_for(np.asarray(chunk))
        np.testing.assert_array_equal(qsl.bank[rows], cache[chunk])
        qsl.unload_samples(chunk)
        assert qsl.bank is bank and qsl.bank.ctypes.data == address
    # LoadGen pads a MultiStream set with its first samples again: each distinct sample takes one row.
    padded = list(range(10, 42)) + list(range(10, 17))
    qsl.load_samples(padded)
    assert qsl.load_error is None and qsl.bank.ctypes.data == address
    np.testing.assert_array_equal(qsl.bank[qsl.rows_for(np.asarray(padded))], cache[padded])
    # More distinct samples than the bank holds: not loaded (no exception into LoadGen), and said so.
    qsl.load_samples(list(range(33)))
    assert "bank holds 32" in str(qsl.load_error)
    with pytest.raises(Exception, match="not loaded .loading failed: .*bank holds 32"):
        qsl.rows_for(np.arange(3))


def test_pool_on_the_qsl_bank_follows_every_load(tiny_f32: Path, demo_cache) -> None:
    """One pool over the QSL's bank: after each load (in place), inference sees the new rows."""
    qsl = SampleLibrary(demo_cache, 24)
    pool, _, got, _ = _collecting_pool(tiny_f32, bank_rows=qsl.capacity, bank=qsl.bank)
    cache = np.asarray(demo_cache.open())
    direct = _direct(tiny_f32, cache)
    for chunk in (list(range(0, 24)), list(range(24, 48)), list(range(76, 100))):
        got.clear()
        qsl.load_samples(chunk)
        rows = qsl.rows_for(np.asarray(chunk))
        ids = np.asarray(chunk, dtype=np.uint64)
        for i in range(0, len(chunk), 8):
            pool.submit(rows[i:i + 8], ids[i:i + 8])
        pool.drain()
        assert got == {i: direct[i] for i in chunk}
        qsl.unload_samples(chunk)


def test_bank_of_the_wrong_shape_is_refused(tiny_f32: Path) -> None:
    compiled, _ = compile_model(ov.Core(), tiny_f32, load_card(tiny_f32), ENGINE, bank_rows=16)
    with pytest.raises(Exception, match="does not fit"):
        InferencePool(compiled, 2, lambda *a: None, lambda *a: None, np.zeros((8, 3, 32, 32), np.uint8))


def test_offline_sut_responses_are_reused_per_request(tiny_f32: Path, demo_cache, tmp_path: Path) -> None:
    """A real LoadGen accuracy run (40 samples, chunks of 16, batch 8): every sample answered once
    with the direct label, through each request's own, fixed response objects."""
    qsl = SampleLibrary(demo_cache, 16)
    compiled, _ = compile_model(ov.Core(), tiny_f32, load_card(tiny_f32), ENGINE, bank_rows=qsl.capacity)
    sut = OfflineSUT(qsl, compiled, ENGINE.infer_requests)
    before = [list(map(id, r)) for r in sut._responses]
    outputs = [out.ctypes.data for out in sut.pool.outputs]
    assert all(r.data == outputs[s] + 4 * k for s, rs in enumerate(sut._responses) for k, r in enumerate(rs))
    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Offline
    settings.mode = lg.TestMode.AccuracyOnly
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(tmp_path)
    log_settings.enable_trace = False
    sut_h = lg.ConstructFastSUT(sut.issue_query, sut.flush_queries)
    qsl_h = lg.ConstructQSL(40, 16, qsl.load_samples, qsl.unload_samples)
    lg.StartTestWithLogSettings(sut_h, qsl_h, settings, log_settings, "")
    sut.close()
    lg.DestroyQSL(qsl_h)
    lg.DestroyFastSUT(sut_h)
    assert sut.first_error() is None
    assert [list(map(id, r)) for r in sut._responses] == before
    from records.accuracy import read_accuracy_log

    labels = read_accuracy_log(tmp_path / "mlperf_log_accuracy.json")
    direct = _direct(tiny_f32, np.asarray(demo_cache.open())[:40])
    assert sorted(labels) == list(range(40))
    np.testing.assert_array_equal([labels[i] for i in range(40)], direct)
