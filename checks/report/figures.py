"""The one figure helper of the report: matplotlib without a screen, figures saved and closed."""
from __future__ import annotations

import os

__all__ = ["subplots", "save"]


def subplots(*args, **kwargs):
    """``matplotlib.pyplot.subplots`` on the Agg backend (no screen needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(*args, **kwargs)


def save(fig, out_dir: str, name: str, tight: bool = True) -> str:
    """Write ``fig`` to ``out_dir/name`` (PNG, 110 dpi), close it, and return ``name``."""
    import matplotlib.pyplot as plt
    if tight:
        fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), dpi=110)
    plt.close(fig)
    return name
