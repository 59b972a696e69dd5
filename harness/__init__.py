"""Running a test: system profiles, one LoadGen test per process (``runner``), compliance
audits and verification, and ``tune`` for engine settings."""
