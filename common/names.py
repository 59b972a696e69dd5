"""The one rule for every name that becomes a file or folder name.

Model card names, profile and system names, submitter names and the like end up as a path
component (``<out>/<name>-<precision>-<hash>/``, ``results/<system>/...``). A name such as
``../x`` or ``/abs/x`` would send those writes outside the directory the user chose, so each
is checked where it enters (a flag, a profile, a model's metadata), with an error naming the
value and where it came from.
"""

from __future__ import annotations

import re

from common.errors import ConfigError, HarnessError

# Letters, digits, '.', '_', '-'; not starting with '.' (no hidden files, no '.' or '..').
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
# Room for the suffixes the harness appends ("-int8-<hash>", ".yaml") under the usual 255-byte limit.
MAX_NAME_LENGTH = 128
NAME_RULE = (f"letters, digits, '.', '_' and '-' only, not starting with '.', at most {MAX_NAME_LENGTH} "
             "characters (it becomes a folder or file name)")


def is_valid_name(value: object) -> bool:
    """Whether ``value`` is a string that follows the name rule."""
    return (isinstance(value, str) and len(value) <= MAX_NAME_LENGTH
            and NAME_PATTERN.fullmatch(value) is not None)


def check_name(value: object, origin: str, error: type[HarnessError] = ConfigError) -> str:
    """Return ``value`` if it follows the name rule, else raise ``error`` naming ``origin`` and the value.

    ``origin`` says where the value came from, e.g. ``"--name"`` or
    ``"model.onnx: mlperf_cpu.card metadata name"``.
    """
    if not is_valid_name(value):
        raise error(f"{origin} {value!r}: not a valid name: use {NAME_RULE}")
    return str(value)
