"""`python -m tools.devstack up|down|status|run`: the local services (tools/devstack/services.py)."""

import sys

from tools.devstack.services import main

sys.exit(main())
