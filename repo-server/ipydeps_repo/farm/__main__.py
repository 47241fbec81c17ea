"""`python -m ipydeps_repo.farm ...`: the farm commands without the rest of the CLI."""

import sys

from .cli import main

sys.exit(main(["farm", *sys.argv[1:]]))
