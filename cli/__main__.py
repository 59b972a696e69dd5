"""``python -m cli ...`` is ``mlperf-cpu ...``."""

import sys

from cli.main import main

sys.exit(main())
