"""One algorithm, two precisions: float64 (numpy) and arbitrary precision.

The numerical kernels are written once against a :class:`Backend`.  ``F64`` holds numpy float64
arrays.  ``MP(digits)`` holds numpy object arrays of arbitrary-precision numbers and evaluates every
elementary function at ``digits`` significant digits, with one of two libraries:

* ``mpfr``   -- ``gmpy2.mpfr`` (MPFR, correctly rounded; about ten times faster per operation),
  the default;
* ``mpmath`` -- ``mpmath.mpf``, the reference; the tests run both on the same trajectories.

Both keep their working precision in a context, so every kernel call runs inside
:meth:`Backend.context`, and numbers must be created inside it.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import gmpy2
import mpmath
import numpy as np

__all__ = ["Backend", "F64", "MP", "backend_for", "LIBRARIES"]

LIBRARIES = ("mpfr", "mpmath")

_FUNCTIONS = {
    "mpfr": {"mpf": gmpy2.mpfr, "exp": gmpy2.exp, "expm1": gmpy2.expm1, "log": gmpy2.log,
             "log1p": gmpy2.log1p, "lgamma": gmpy2.lngamma, "isfinite": gmpy2.is_finite,
             "sqrt": gmpy2.sqrt},
    "mpmath": {"mpf": mpmath.mpf, "exp": mpmath.exp, "expm1": mpmath.expm1, "log": mpmath.log,
               "log1p": mpmath.log1p, "lgamma": mpmath.loggamma, "isfinite": mpmath.isfinite,
               "sqrt": mpmath.sqrt},
}
_UFUNCS = {lib: {name: np.frompyfunc(fn, 1, 1) for name, fn in fns.items()}
           for lib, fns in _FUNCTIONS.items()}


@dataclass(frozen=True)
class Backend:
    """Array namespace of one precision: ``digits`` None is float64."""

    digits: int | None = None
    library: str = "mpfr"

    @property
    def is_mp(self) -> bool:
        return self.digits is not None

    @property
    def name(self) -> str:
        return "float64" if self.digits is None else f"{self.library}-{self.digits}"

    @property
    def bits(self) -> int:
        """Binary precision (mpmath's rule for ``dps``)."""
        return 53 if self.digits is None else mpmath.libmp.dps_to_prec(self.digits)

    @property
    def namespace(self) -> dict:
        """Names for generated code: ``mpf`` is this backend's number type."""
        return {} if self.digits is None else {"mpf": _FUNCTIONS[self.library]["mpf"]}

    def function(self, name: str):
        """The scalar function ``name`` (exp, log1p, sqrt, ...) of this backend's library."""
        return getattr(np, name) if self.digits is None else _FUNCTIONS[self.library][name]

    def context(self):
        """Context manager that sets the working precision (no-op for float64)."""
        if self.digits is None:
            return contextlib.nullcontext()
        if self.library == "mpmath":
            return mpmath.workprec(self.bits)
        return gmpy2.context(precision=self.bits, emin=gmpy2.get_emin_min(),
                             emax=gmpy2.get_emax_max())

    # -- construction -------------------------------------------------------------------------
    def scalar(self, x):
        """A number of this precision; strings are parsed at full precision."""
        if self.digits is None:
            return float(x)
        return _FUNCTIONS[self.library]["mpf"](x)

    def array(self, values) -> np.ndarray:
        if self.digits is None:
            return np.asarray(values, dtype=np.float64)
        arr = np.asarray(values, dtype=object)
        return _UFUNCS[self.library]["mpf"](arr) if arr.size else arr

    def zeros(self, shape) -> np.ndarray:
        if self.digits is None:
            return np.zeros(shape)
        out = np.empty(shape, dtype=object)
        out.fill(self.scalar(0))
        return out

    def to_float(self, arr) -> np.ndarray:
        if self.digits is None:
            return np.asarray(arr, dtype=np.float64)
        return np.vectorize(float, otypes=[np.float64])(np.asarray(arr, dtype=object))

    def to_str(self, x) -> str:
        """Decimal string with this precision's digits and three guard digits."""
        if self.digits is None:
            return repr(float(x))
        if self.library == "mpmath":
            return mpmath.nstr(x, self.digits + 3, strip_zeros=False, min_fixed=1, max_fixed=0)
        return format(x, f".{self.digits + 3}e")

    # -- elementary functions -----------------------------------------------------------------
    def _apply(self, name, npfn, x):
        if self.digits is None:
            return npfn(x)
        return _UFUNCS[self.library][name](np.asarray(x, dtype=object))

    def exp(self, x):
        return self._apply("exp", np.exp, x)

    def expm1(self, x):
        return self._apply("expm1", np.expm1, x)

    def log(self, x):
        return self._apply("log", np.log, x)

    def log1p(self, x):
        return self._apply("log1p", np.log1p, x)

    def sqrt(self, x):
        return self._apply("sqrt", np.sqrt, x)

    def lgamma(self, x):
        if self.digits is None:
            from scipy.special import gammaln
            return gammaln(x)
        return self._apply("lgamma", None, x)

    def isfinite(self, x) -> bool:
        """True when every entry is a finite number."""
        if self.digits is None:
            return bool(np.all(np.isfinite(x)))
        return bool(np.all(self._apply("isfinite", None, x)))


F64 = Backend()


def MP(digits: int, library: str = "mpfr") -> Backend:
    """Arbitrary-precision backend with ``digits`` significant decimal digits (``digits >= 1``)."""
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise ValueError(f"precision must be a whole number of digits >= 1, got {digits!r}")
    if library not in LIBRARIES:
        raise ValueError(f"unknown precision library {library!r}; choose one of "
                         f"{', '.join(LIBRARIES)}")
    return Backend(digits, library)


def backend_for(precision: int | None, library: str = "mpfr") -> Backend:
    """``F64`` when ``precision`` is None, else ``MP(precision, library)``."""
    return F64 if precision is None else MP(precision, library)
