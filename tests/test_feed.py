"""The feed: a batch of consecutive bank rows is a view of the QSL's bank, any other is copied into
the request (real OpenVINO, real LoadGen, the tiny and demo models, the demo images' cache).

- both ways give the labels of the served model run directly on the same rows;
- OpenVINO reads a view in place (the request's input tensor is the bank's memory at that row) and
  the bank is one array for the whole process, across load/unload cycles;
- a short last batch reports exactly its own samples, with the right labels;
- Offline orders a query so that its batches are views (``sut.batching``);
- the responses are the request's fixed response objects, only their ids change.
"""

from pathlib import Path

import mlperf_loadgen as lg
import numpy as np
import openvino as ov
import pytest
from conftest import compile_reference, prepare_model

from dataset.cache import build_cache
from dataset.val_map import parse_val_map
from modelprep.card import load_card
from sut.config import EngineConfig
from sut.batching import view_order
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
    compiled = compile_reference(model / "model.xml")
    return np.concatenate([compiled(data[i:i + 1])[0].reshape(-1) for i in range(len(data))])


def _collecting_pool(model: Path, bank_rows: int, bank: np.ndarray | None = None):
    compiled, info = compile_model(ov.Core(), model, load_card(model), ENGINE)
    got: dict[int, int] = {}
    calls: list[tuple[int, int]] = []

    def done(slot: int, ids: np.ndarray, top1: np.ndarray) -> None:
        calls.append((slot, len(ids)))
        got.update(zip(ids.tolist(), top1.tolist()))

    def fail(ids: np.ndarray, error: BaseException) -> None:
        raise AssertionError(f"inference failed: {error}")

    return InferencePool(compiled, ENGINE.infer_requests, done, fail, bank, bank_rows=bank_rows), info, got, calls


def test_compiled_model_is_the_served_ir_with_its_batch(tiny_f32: Path) -> None:
    compiled, info = compile_model(ov.Core(), tiny_f32, load_card(tiny_f32), ENGINE)
    assert len(compiled.inputs) == 1 and tuple(compiled.input(0).shape) == (8, 3, 32, 32)
    assert info.input_shape == (8, 3, 32, 32)


@pytest.mark.parametrize("consecutive", [True, False])
def test_views_and_copies_equal_direct_inference_and_short_batch(tiny_f32: Path, consecutive: bool) -> None:
    pool, _, got, calls = _collecting_pool(tiny_f32, bank_rows=40)
    pool.load(np.random.default_rng(0).integers(0, 256, (40, 3, 32, 32), dtype=np.uint8))
    rows = (np.arange(3, 32) if consecutive else np.random.default_rng(1).permutation(40)[:29]).astype(np.int32)
    ids = np.arange(1000, 1029, dtype=np.uint64)  # 3 full batches of 8 + 5
    for i in range(0, 29, 8):
        pool.submit(rows[i:i + 8], ids[i:i + 8])
    pool.drain()
    assert sorted(n for _, n in calls) == [5, 8, 8, 8]  # the short batch reports only its own 5
    assert sorted(got) == ids.tolist()
    direct = _direct(tiny_f32, pool.bank[rows])
    np.testing.assert_array_equal([got[int(i)] for i in ids], direct)
    assert pool.fed == ({"view": 4, "copy": 0} if consecutive else {"view": 0, "copy": 4})


def test_short_batch_after_full_batch_reports_its_own_labels(tiny_f32: Path) -> None:
    """The tail of a reused request's input still holds the previous batch's samples: those
    outputs must never be reported, and the first n must be the new samples'."""
    pool, _, got, calls = _collecting_pool(tiny_f32, bank_rows=16)
    pool.load(np.random.default_rng(2).integers(0, 256, (16, 3, 32, 32), dtype=np.uint8))
    direct = _direct(tiny_f32, pool.bank)
    for rows in (np.arange(8), np.array([9, 3, 5, 1, 0, 2, 4, 6])):  # every request: a view, then a copy
        for _ in range(3):
            for _ in range(ENGINE.infer_requests):
                pool.submit(rows.astype(np.int32), np.arange(8, dtype=np.uint64))
            pool.drain()
    for rows in ([15, 9, 12], [13, 14, 15], [4, 5, 6]):  # a copy; a view that does not fit; a view
        got.clear()
        calls.clear()
        pool.submit(np.array(rows, np.int32), np.array([7, 8, 9], np.uint64))
        pool.drain()
        assert calls == [(calls[0][0], 3)] and got == dict(zip([7, 8, 9], direct[rows].tolist()))
    assert pool.fed == {"view": 13, "copy": 14}


def test_openvino_reads_a_view_in_place(tiny_f32: Path) -> None:
    pool, _, _, _ = _collecting_pool(tiny_f32, bank_rows=16)
    row_bytes = pool.bank[0].nbytes
    for first in (0, 5, 8):
        pool.submit(np.arange(first, first + 8, dtype=np.int32), np.zeros(0, np.uint64))
        slot = pool._started[-1]
        pool.drain()
        assert pool._requests[slot].get_input_tensor().data.ctypes.data == pool.bank.ctypes.data + first * row_bytes
    for request, out in zip(pool._requests, pool.outputs):
        assert request.get_output_tensor().data.ctypes.data == out.ctypes.data


def test_view_order_makes_batches_of_consecutive_rows() -> None:
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 256, 20000)  # LoadGen draws Offline samples from the loaded set
    order = view_order(rows, 16)
    assert sorted(order.tolist()) == list(range(len(rows)))  # a permutation: every sample once
    batches = rows[order][: len(rows) // 16 * 16].reshape(-1, 16)
    consecutive = (np.diff(batches, axis=1) == 1).all(axis=1)
    assert consecutive.mean() > 0.85
    assert consecutive[: int(consecutive.sum())].all()  # the views first, the rest after
    once = rng.permutation(64)  # an accuracy set: every row once
    assert (np.diff(once[view_order(once, 8)].reshape(-1, 8), axis=1) == 1).all()
    np.testing.assert_array_equal(view_order(np.array([5, 1, 5, 0]), 1), [3, 1, 0, 2])
    assert len(view_order(np.zeros(0, np.int64), 8)) == 0


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
    compiled, _ = compile_model(ov.Core(), tiny_f32, load_card(tiny_f32), ENGINE)
    with pytest.raises(Exception, match="does not fit"):
        InferencePool(compiled, 2, lambda *a: None, lambda *a: None, np.zeros((8, 3, 32, 31), np.uint8))


def test_offline_sut_responses_are_reused_per_request(tiny_f32: Path, demo_cache, tmp_path: Path) -> None:
    """A real LoadGen accuracy run (40 samples, chunks of 16, batch 8): every sample answered once
    with the direct label, through each request's own, fixed response objects."""
    qsl = SampleLibrary(demo_cache, 16)
    compiled, _ = compile_model(ov.Core(), tiny_f32, load_card(tiny_f32), ENGINE)
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
    assert sut.pool.fed == {"view": 5, "copy": 0}  # sets of 16, 16 and 8 samples, each row once: all views
    from records.accuracy import read_accuracy_log

    labels = read_accuracy_log(tmp_path / "mlperf_log_accuracy.json")
    direct = _direct(tiny_f32, np.asarray(demo_cache.open())[:40])
    assert sorted(labels) == list(range(40))
    np.testing.assert_array_equal([labels[i] for i in range(40)], direct)
