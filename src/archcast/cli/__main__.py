"""``python -m archcast.cli``: the same as the ``archcast`` command."""

import sys

from archcast.cli import main

sys.exit(main())
