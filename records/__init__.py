"""After a test: LoadGen's logs, the run record (``result.json``) and the results tree, accuracy,
the one set of submission rules, and the summary table."""
