"""The flows that string stages together (prepare models, run tests in their own processes,
submit, report), called by the CLI, ``run_offline.sh`` and ``bench/``."""
