"""The ``mlperf-cpu`` command line: argument parsing, one handler per subcommand, exit codes."""
