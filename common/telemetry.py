"""Nothing goes out: the telemetry and hub access of the libraries the harness loads are off.

``telemetry_off()`` runs first in every entry point (the CLI, the bench scripts) and before
anything imports OpenVINO, NNCF or a hub library. It changes this process only (its
environment, which the harness's child processes inherit, and one library class); it writes
nothing to the user's home and nothing to the user's shell.

What each library offers, as read in its installed source:

- NNCF (``nncf/telemetry/wrapper.py``) replaces its telemetry object with a stub when
  ``NNCF_CI`` (or ``NNCF_DEV``) is set. It still builds OpenVINO's telemetry object first.
- ``openvino_telemetry`` (used by NNCF and by OpenVINO's model converter) has no switch that
  leaves the home directory alone: without a consent file in ``~/intel`` it assumes consent,
  writes a client id and a usage counter there and sends events. Its only other opt-out is the
  ``CI`` variable, which also changes other libraries (torch), so instead its consent check is
  made to answer "declined" in this process: no consent file is read or written, no event is
  sent, whoever initialises it and however often.
- huggingface_hub (timm's hub access): ``HF_HUB_DISABLE_TELEMETRY`` and ``HF_HUB_OFFLINE``;
  ``DO_NOT_TRACK`` is the common convention it also honours. The harness builds timm models with
  ``pretrained=False``; the one command that asks the hub for weights on purpose (``--pretrained``)
  lifts the offline switch with ``allow_hub_downloads`` (telemetry stays off).
"""

from __future__ import annotations

import logging
import os
from typing import MutableMapping

log = logging.getLogger(__name__)

# Always set: switches off every report a library would send.
TELEMETRY_ENV = {"NNCF_CI": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
# Set unless the user chose otherwise: no hub downloads unless a command asks for one (--pretrained).
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1"}
_offline_set_here: set[str] = set()  # the OFFLINE_ENV keys telemetry_off put into os.environ


def telemetry_environment(environ: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Put the telemetry-off switches into ``environ`` (and return it)."""
    environ.update(TELEMETRY_ENV)
    return environ


def telemetry_off() -> None:
    """Switch off telemetry for this process and the children it starts; call before importing OpenVINO/NNCF."""
    for key, value in OFFLINE_ENV.items():
        if key not in os.environ:
            os.environ[key] = value
            _offline_set_here.add(key)
    telemetry_environment(os.environ)
    decline_openvino_telemetry()


def allow_hub_downloads() -> None:
    """Lift the hub's offline switch that ``telemetry_off`` set (not one the user set), for a command
    the user asked to download weights (``--pretrained``); call before the hub library is imported."""
    for key in sorted(_offline_set_here):
        os.environ.pop(key, None)
    _offline_set_here.clear()


def decline_openvino_telemetry() -> bool:
    """Make ``openvino_telemetry``'s consent check answer "declined" in this process.

    Returns whether the package is installed. If its checker is not where this version keeps
    it, fall back to the package's own CI opt-out (``CI=true``), which both NNCF and OpenVINO's
    converter honour, so that telemetry stays off either way.
    """
    try:
        from openvino_telemetry.utils import opt_in_checker
    except ImportError:
        return False
    checker = getattr(opt_in_checker, "OptInChecker", None)
    declined = getattr(getattr(opt_in_checker, "ConsentCheckResult", None), "DECLINED", None)
    if checker is None or declined is None or not callable(getattr(checker, "check", None)):
        log.debug("openvino_telemetry: consent checker not found; using its CI opt-out")
        os.environ["CI"] = "true"
        return True

    def check(self: object, enable_opt_in_dialog: bool = True, disable_in_ci: bool = False) -> object:
        """Consent declined: nothing is collected, stored in the home directory or sent."""
        return declined

    checker.check = check
    return True
