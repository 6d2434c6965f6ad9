"""``python -m checks`` is ``icl-verify``."""
import sys

from .cli import main

sys.exit(main())
