"""The system under test: the OpenVINO inference pool (``engine``), the query sample library
(``qsl``) and the LoadGen-facing SUT (``sut``), with the settings they run with (``config``)."""
