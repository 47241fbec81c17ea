"""``python -m ipydeps_repo``: the same as the ``ipydeps-repo`` command."""

from __future__ import annotations

import sys

from .cli.main import main

sys.exit(main())
