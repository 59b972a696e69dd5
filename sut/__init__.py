"""The MLPerf Inference Offline harness for CPUs: model card and preparation,
OpenVINO inference pool, LoadGen SUT/QSL, runner, accuracy and reports."""
