"""`python -m proxy` is `session-minter`."""

import sys

from .cli import main

sys.exit(main())
