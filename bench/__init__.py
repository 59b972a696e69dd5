"""The benches: the harness measured against references on this host.

Each bench module (``bench/NAME.py``) compares the harness with a reference (OpenVINO's
``benchmark_app``, an ideal dispatcher, one instance, INT8 ResNet-50, ...) and prints, as its last
line, ``ratio <number>``; with ``--json FILE`` it also writes its figures' records, from which
``scripts/performance_table.py`` builds ``docs/performance.md``. A bench runs as a module of this
package, ``bench/run.sh NAME [args]`` (which installs the 'train' extra first and runs
``python -P -m bench.NAME``); the pieces several benches share live in ``bench/_*.py``. The package
runs from a checkout only: it is not part of the wheel.
"""
