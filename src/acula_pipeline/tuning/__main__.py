"""``python -m acula_pipeline.tuning apply``: see ``tuning/apply.py``."""

import sys

from acula_pipeline.tuning.apply import main

sys.exit(main())
