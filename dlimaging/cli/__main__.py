"""`python -m dlimaging.cli`: the `dlimaging` command."""

import sys

from dlimaging.cli import main

sys.exit(main())
