"""``python -m icl_verifier.checks`` is ``icl-verify``."""
import sys

from .cli import main

sys.exit(main())
