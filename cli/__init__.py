"""The ``mlperf-cpu`` command line: one module per subcommand (its parser beside its handler), the entry and exit codes in ``main``."""
