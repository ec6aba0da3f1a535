"""``python -m grokplug`` (and ``accelerate launch -m grokplug …``): the command line."""

import sys

from .cli import main

sys.exit(main())
