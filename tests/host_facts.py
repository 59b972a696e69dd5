"""What this test host is known to allow, decided without the code under test.

A test of a host control skips where the host cannot apply it; but a skip keyed only to the
code's own probe (``realtime_allowed``, ``custom_slices_supported``) would also hide a broken
probe. Where the host is known to allow the control (root on Linux >= 6.12: ``SCHED_FIFO``
and EEVDF custom slices), ``needs`` never skips, so such a test fails instead.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable

import pytest


def kernel_at_least(major: int, minor: int) -> bool:
    """Whether the running Linux kernel is at least ``major.minor``."""
    match = re.match(r"(\d+)\.(\d+)", os.uname().release) if sys.platform.startswith("linux") else None
    return bool(match) and (int(match.group(1)), int(match.group(2))) >= (major, minor)


ROOT_ON_LINUX_6_12 = sys.platform.startswith("linux") and os.geteuid() == 0 and kernel_at_least(6, 12)


def needs(available: Callable[[], bool], reason: str) -> pytest.MarkDecorator:
    """Skip where ``available()`` says no, unless this host is known to allow it (then run, and fail)."""
    return pytest.mark.skipif(not ROOT_ON_LINUX_6_12 and not available(), reason=reason)
