"""``python -m xpscratch``: the same as the ``xpscratch`` command."""

import sys

from .cli import main

sys.exit(main())
