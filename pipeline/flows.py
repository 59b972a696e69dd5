"""The flows: prepare models, run tests (each in its own process), submit, in Python.

``run_offline.sh``, the CLI's ``pipeline`` command, ``report`` and ``bench/`` all call
these. A LoadGen test must run in its own process (LoadGen's ``FromConfig`` may be
called once per process), so ``run_test`` (``pipeline.testrun``) starts ``python -m cli run``
and reads back the ``RunResult`` the child wrote; nothing parses the child's output.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from dataclasses import replace as replace_fields
from pathlib import Path
from typing import Any

from common.errors import ConfigError, HarnessError
from common.files import replace_text_with_backup
from common.resources import default_user_conf, shipped
from common.testspec import Mode, Overrides, Scenario, loadgen_model
from dataset.demo import build_demo_dataset
from harness.profile import load_profile
from modelprep.agreement import CheckSet
from modelprep.card import load_card
from modelprep.prepare import PrepareRequest, prepare
from modelprep.quantize import CalibrationConfig
from modelprep.source import resolve_source
from modelprep.weights import WeightsChoice
from records import results as run_records
from records.results import RunResult, identity_differences, run_identity
from pipeline import plan
from pipeline.testrun import TestSpec, Workspace, run_test  # noqa: F401 - the flows' test runner
from records.rules import OFFICIAL_ACCURACY_SAMPLES, benchmark_rules, closed_model_problems

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
DEMO_MODEL = shipped("models/weights/decinet_demo.onnx")
DETECTOR_DEMO_MODEL = shipped("models/weights/detector_demo.onnx")
DETECTOR_PRESET = "mixed"  # the NNCF preset the detection demo calibrates with (demo_task)
# Demo performance runs: short and NON-OFFICIAL (target QPS from a timed warm-up).
DEMO_OVERRIDES = Overrides(min_duration_ms=10_000, min_query_count=1, target_qps=0)


def run_step(spec: TestSpec, replace: bool) -> RunResult:
    """One test of a pipeline. Without ``replace``, a complete run already in its directory is
    reused when it was made with the same model, profile and settings (user.conf, dataset), and
    any other complete run there stops the pipeline; a failed or missing one is run (again)."""
    run_dir = spec.run_dir()
    if not replace and run_records.holds_complete_run(run_dir):
        existing = RunResult.load(run_dir)
        differs = planned_differences(spec, existing)
        if differs:
            raise ConfigError(f"{run_dir}: holds a complete {spec.mode.value} run made with other "
                              f"{', '.join(differs)}; pass --replace to run it again")
        log.info("reusing %s (a complete run of the same model, profile and settings; --replace runs it again)",
                 run_dir)
        return existing
    return run_test(replace_fields(spec, replace=replace))


def planned_differences(spec: TestSpec, existing: RunResult) -> list[str]:
    """What differs between a complete run and the one ``spec`` would make: identity fields
    (``records.results.run_identity``; the inference precision follows from them), user.conf, data."""
    from common.files import sha256_file

    profile = load_profile(spec.system, check_fits=False, host_tuning=spec.host_tuning)
    planned = run_identity(load_card(spec.model_dir), profile, spec.scenario, existing.inference_precision,
                           spec.overrides.active())
    out = identity_differences(existing.identity(), planned)
    if not Path(spec.user_conf).is_file() or existing.user_conf_sha256 != sha256_file(spec.user_conf):
        out.append(f"user.conf ({spec.user_conf})")
    if Path(existing.dataset_dir) != Path(spec.dataset).resolve():
        out.append(f"dataset ({existing.dataset_dir})")
    if spec.val_map is not None and Path(existing.val_map) != Path(spec.val_map).resolve():
        out.append(f"val_map ({existing.val_map})")
    return out


# ----------------------------------------------------------------------------- preparing models
def demo_calibration(workspace: Workspace, subset: int | None = None) -> CalibrationConfig:
    """The bundled demo's calibration list (built on first use)."""
    demo = build_demo_dataset(workspace.demo_data)
    return CalibrationConfig(demo / "train", demo / "cal_list.txt", subset_size=subset)


def prepare_model(model: str, precision: str, workspace: Workspace, calibration: CalibrationConfig | None = None,
                  check: CheckSet | None = None, weights: WeightsChoice | None = None, **options: Any) -> Path:
    """A model file or built-in architecture name (``timm/NAME[.tag]`` with trained ``weights``) -> prepared
    model directory."""
    source = resolve_source(model, workspace.models / "sources", weights)
    return prepare(PrepareRequest(source, precision, workspace.models, workspace.cache,
                                  calibration=calibration if precision == "int8" else None,
                                  check=check if precision == "int8" else None, **options))


# ----------------------------------------------------------------------------- the main job
@dataclass(frozen=True)
class PipelineRequest:
    """What ``run_offline.sh`` was asked to do (its flags, validated)."""

    workspace: Workspace
    model: Path | None = None
    dataset: Path | None = None
    calib_list: Path | None = None
    calib_dir: Path | None = None
    val_map: Path | None = None
    system: str = "host"
    precision: str = "int8"
    mode: str = "all"
    user_conf: Path = field(default_factory=default_user_conf)  # ./user.conf, else the shipped one
    submission: bool = False
    org: str = "Demo"
    out: Path = Path("submission")
    compliance: bool = False
    tune: bool = False
    system_fields: dict[str, str] = field(default_factory=dict)
    scenarios: tuple[Scenario, ...] = (Scenario.OFFLINE,)
    category: str | None = None  # submission: edge or datacenter,edge (sets the scenarios)
    division: str = "open"
    task: str = "classification"  # or "detection": a YOLO-style detector on a COCO-layout dataset
    host_tuning: bool = False  # --host-tuning: every run (and tune) with the host profile's host settings
    replace: bool = False  # run again where complete runs exist, and replace an existing package
    official_checker: Path | None = None  # submission: a local mlcommons/inference checkout, its checker last
    weights: WeightsChoice | None = None  # --weights FILE / --pretrained for a timm/NAME[.tag] model

    @property
    def detection(self) -> bool:
        """A detector on a COCO-layout dataset (mAP), not a classifier."""
        return self.task == "detection"


PIPELINE_MODES = {"all": (Mode.ACCURACY, Mode.PERFORMANCE), "accuracy": (Mode.ACCURACY,),
                  "performance": (Mode.PERFORMANCE,)}


def requested_modes(mode: str) -> tuple[Mode, ...]:
    """``pipeline --mode`` (all, accuracy or performance) -> the test modes to run, in order."""
    if mode not in PIPELINE_MODES:
        raise ConfigError(f"--mode {mode!r}: expected one of {', '.join(PIPELINE_MODES)}")
    return PIPELINE_MODES[mode]


@dataclass(frozen=True)
class DemoTask:
    """What the bundled demo of one task runs: the committed model, its dataset and calibration."""

    model: Path
    dataset: Path  # the accuracy/performance set (an ImageNet-layout val folder or a COCO-layout root)
    calibration: CalibrationConfig
    check: CheckSet | None  # held-out top-1 check of INT8 (classifiers only)
    about: str  # one line for the log: what the demo is


def demo_task(req: PipelineRequest) -> DemoTask:
    """The bundled demo of ``req.task`` (its dataset built on first use)."""
    ws = req.workspace
    if req.detection:
        from dataset.coco_demo import build_coco_demo

        root = build_coco_demo(ws.demo_data.with_name(ws.demo_data.name + "-coco"))
        # MIXED (asymmetric activations): on the demo detector 0.4 mAP points under FP32, against 1.3
        # with the symmetric PERFORMANCE preset (busy 2-core host; README "Object detection").
        return DemoTask(DETECTOR_DEMO_MODEL, root,
                        CalibrationConfig(root / "train2017", root / "cal_list.txt", preset=DETECTOR_PRESET), None,
                        "detection demo: digits on photos in COCO layout, committed demo detector")
    calibration = demo_calibration(ws)
    demo = ws.demo_data
    return DemoTask(DEMO_MODEL, demo / "val", calibration, CheckSet(demo / "val", demo / "val" / "val_map.txt", 1000),
                    "bundled demo: digits in ImageNet val layout, committed DeciNet-style demo model")


def run_demo(req: PipelineRequest) -> list[RunResult]:
    """The bundled demo of ``req.task``: FP32 and INT8 of the committed model (the classifier on the digits
    in ImageNet layout, or the detector on the COCO-layout set), accuracy + short performance runs."""
    demo = demo_task(req)
    log.info(demo.about)
    log.info("demo performance runs use SHORT, NON-OFFICIAL LoadGen settings: not submittable")
    modes = requested_modes(req.mode)
    runs = []
    for precision in ("f32", "int8"):
        model_dir = prepare_model(str(demo.model), precision, req.workspace, demo.calibration, demo.check,
                                  task=req.task)
        for scenario in req.scenarios:
            common = dict(model_dir=model_dir, dataset=demo.dataset, system=req.system, workspace=req.workspace,
                          user_conf=req.user_conf, scenario=scenario, host_tuning=req.host_tuning)
            # A Server accuracy run arrives at target_qps: without a tuned user.conf, take it from the warm-up.
            accuracy = Overrides(target_qps=0) if scenario is Scenario.SERVER else Overrides()
            if Mode.ACCURACY in modes:
                runs.append(run_step(TestSpec(Mode.ACCURACY, overrides=accuracy, **common), req.replace))
            if Mode.PERFORMANCE in modes:
                runs.append(run_step(TestSpec(Mode.PERFORMANCE, overrides=DEMO_OVERRIDES, **common), req.replace))
    return runs


def run_real(req: PipelineRequest) -> list[RunResult]:
    """A user's model on a real dataset with official settings: prepare, then accuracy and/or performance."""
    assert req.model is not None and req.dataset is not None
    calibration = check = None
    if req.precision == "int8":
        if req.calib_list is None:
            raise HarnessError("--precision int8 needs --calib-list")
        calibration = CalibrationConfig(req.calib_dir or req.dataset, req.calib_list)
        if not req.detection:  # the INT8 check compares top-1 labels
            check = CheckSet(req.dataset, req.val_map or req.dataset / "val_map.txt", 1000)
    model_dir = prepare_model(str(req.model), req.precision, req.workspace, calibration, check, req.weights,
                              task=req.task)
    modes = requested_modes(req.mode)
    return [run_step(TestSpec(mode, model_dir, req.dataset, req.system, req.workspace, req.user_conf, req.val_map,
                              scenario, host_tuning=req.host_tuning), req.replace)
            for scenario in req.scenarios for mode in modes]


# ----------------------------------------------------------------------------- a whole submission
DEMO_SYSTEM_FIELDS = {"cooling": "N/A (virtual machine; cooling managed by the cloud provider)",
                      "host_memory_configuration": "undisclosed (virtual machine)"}
# The demo's Offline target_qps uses tune's own margin (harness.run_length.OFFLINE_TARGET_MARGIN): the
# demo runs at about the tuned rate, so a larger margin would only make its official run longer.
DEMO_SUBMISSION_MARGIN: float | None = None


def demo_submission_request(req: PipelineRequest) -> PipelineRequest:
    """The demo of ``req.task`` at official length, tuned into the workspace's own user.conf (never the
    project's). Classification: a 50,000-image val set rendered from the bundled digits and the committed
    demo model; detection: the bundled COCO-layout set (its val2017 is the accuracy set; the checker
    wants the round's 1,525 images) and the committed demo detector."""
    import socket
    from dataclasses import replace

    ws = req.workspace
    demo = demo_task(req)
    dataset = demo.dataset
    if not req.detection:
        big = ws.demo_data.with_name(ws.demo_data.name + "-50k")
        dataset = build_demo_dataset(big, val_size=OFFICIAL_ACCURACY_SAMPLES) / "val"
    ws.work.mkdir(parents=True, exist_ok=True)
    conf = ws.work / ("demo-detection-submission.user.conf" if req.detection else "demo-submission.user.conf")
    replace_text_with_backup(conf, Path(req.user_conf).read_text())  # a tuned copy is kept as .bak
    fields = req.system_fields or {"system_name": f"{socket.gethostname()}-{req.system}", **DEMO_SYSTEM_FIELDS}
    return replace(req, model=demo.model, dataset=dataset, calib_list=demo.calibration.list_file,
                   calib_dir=demo.calibration.image_dir, user_conf=conf, tune=True, system_fields=fields)


def tune_scenarios(req: PipelineRequest, model_dir: Path, scenarios: tuple[Scenario, ...],
                   offline_margin: float | None, paces: dict | None = None) -> str:
    """Tune every scenario in turn into one ``<system>-tuned`` profile and the run's user.conf
    (each scenario's tuned pace into ``paces``: the plan's estimates)."""
    from pipeline.tuning import TuneOptions, tune_scenario

    profile = load_profile(req.system, host_tuning=req.host_tuning)
    for scenario in scenarios:
        options = TuneOptions(margin=offline_margin if scenario is Scenario.OFFLINE else None,
                              dataset=req.dataset, workspace=req.workspace)
        done = tune_scenario(scenario, model_dir, profile, req.user_conf, options).outcome
        log.info("tuned %s: %s", scenario.value, done.summary)
        if paces is not None and done.pace is not None:
            paces[scenario] = done.pace
        profile = load_profile(str(done.profile_path))
    return profile.name


def run_submission(req: PipelineRequest, command: str = "") -> Any:
    """Prepare INT8, optionally tune, run every test of every scenario with official settings,
    package (open or closed, by category) and check."""
    from submit.official import verify_tree
    from submit.package import package

    demo = req.model is None and req.dataset is None
    margin = DEMO_SUBMISSION_MARGIN if demo else None
    if demo:
        log.info("demo submission: the bundled %s at official length (%s, 600 s runs)", req.task,
                 "the COCO-layout set" if req.detection else "50,000 accuracy samples")
        req = demo_submission_request(req)
    if req.model is None or req.dataset is None or req.calib_list is None:
        raise HarnessError("--submission needs --model, --dataset and --calib-list (or none of them for the demo)")
    rules = benchmark_rules(loadgen_model(req.task))
    scenarios = rules.required_scenarios(req.category) if req.category else req.scenarios
    compliance = req.compliance or req.division == "closed"
    modes = [Mode.ACCURACY, Mode.PERFORMANCE] + (list(rules.compliance) if compliance else [])  # yolo: TEST01
    paces = plan.paces_from_user_conf(req.user_conf, rules.model, scenarios)
    cores = load_profile(req.system, check_fits=False).cores
    plan.log_plan("plan", ([plan.Step("prepare INT8 (calibration, check)", None, "not estimated")]
                           + (plan.tune_steps(scenarios, cores) if req.tune else [])
                           + plan.run_steps(scenarios, modes, {} if req.tune else paces, rules.accuracy_samples)))
    check = None if req.detection else CheckSet(req.dataset, req.val_map or req.dataset / "val_map.txt", 1000)
    preset = DETECTOR_PRESET if demo and req.detection else "performance"
    calibration = CalibrationConfig(req.calib_dir or req.dataset, req.calib_list, preset=preset)
    model_dir = prepare_model(str(req.model), req.precision, req.workspace, calibration, check, req.weights,
                              task=req.task)
    if req.division == "closed":  # refuse now, not after hours of runs
        problems = closed_model_problems(load_card(model_dir), model_dir / "card.json")
        if problems:
            raise HarnessError(str(problems[0]))
    system = req.system
    if req.tune:
        paces = {}
        system = tune_scenarios(req, model_dir, scenarios, margin, paces)  # written to configs/<name>.yaml
    steps = plan.run_steps(scenarios, modes, paces, rules.accuracy_samples)
    plan.log_plan("LoadGen runs", steps)
    for number, (scenario, mode) in enumerate(((s, m) for s in scenarios for m in modes), 1):
        plan.log_step(number, len(steps), steps[number - 1])
        run_step(TestSpec(mode, model_dir, req.dataset, system, req.workspace, req.user_conf, req.val_map,
                          scenario, host_tuning=req.host_tuning), req.replace)

    profile_name = load_profile(system, check_fits=False).name
    label = load_card(model_dir).label
    done = package(req.workspace.results, profile_name, label, req.org, req.out, REPO,
                   system_overrides=req.system_fields, user_conf=req.user_conf, replace=req.replace,
                   package_command=command or None, scenarios=scenarios, division=req.division,
                   category=req.category or "edge")
    verify_tree(req.out, req.official_checker)  # our rules, then (if given) the official checker
    return done
