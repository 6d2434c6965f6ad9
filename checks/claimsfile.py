"""Claims files: a user's theorems in TOML, read with the standard library's ``tomllib``.

    [[claim]]
    id = "T2"                       # unique in the file
    statement = "Under-represented features converge within O(...) steps."
    source = "paper"                # paper | derived | reconstructed
    setting = "features"
    quantity = "features.under.convergence_time"   # a named quantity (icl-verify list) ...
    # event = "loss[k] - loss_star[k] <= epsilon"  # ... or the first step a condition holds,
    # family = "imbalanced"                        #     in this family,
    # feature = 2                                  #     for this feature (1-based)
    bound = "K**2*log(K)/eta + K*log(K/sqrt(epsilon))/(epsilon*eta)"
    kind = "O"                      # O | le | lt | ge | gt

    [claim.where]                   # optional; the setting's region otherwise
    K = "8..64"

Every field is checked before any claim runs; an error names the file, the claim and the field,
in one line.  Nothing in the file is evaluated as code (bounds, laws and conditions go through the
safe parser of :mod:`checks.expressions`).
"""
from __future__ import annotations

import tomllib

from .bounds import BoundError, parse_bound
from .claims import KINDS, SOURCES, Claim
from .events import EventError
from .region import WhereError, restrict

__all__ = ["ClaimsFileError", "load_claims", "FIELDS"]

#: Fields of a claim: required ones first.
REQUIRED = ("id", "statement", "source", "setting", "bound")
OPTIONAL = ("quantity", "event", "family", "feature", "kind", "where")
FIELDS = REQUIRED + OPTIONAL
MAX_BYTES = 1_000_000
MAX_CLAIMS = 200


class ClaimsFileError(ValueError):
    """A claims file that cannot be read or has a bad claim (one line)."""


def load_claims(path: str, settings: dict) -> dict:
    """``{id: (setting, Claim)}`` of the claims in the TOML file ``path``, in file order."""
    def fail(where, why):
        raise ClaimsFileError(f"{path}: {where}{why}")

    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        fail("", f"cannot be read ({exc.strerror or exc})")
    if len(raw) > MAX_BYTES:
        fail("", f"larger than {MAX_BYTES} bytes")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        fail("", "is not UTF-8 text")
    except tomllib.TOMLDecodeError as exc:
        fail("", f"is not valid TOML ({exc})")
    extra = sorted(set(data) - {"claim"})
    if extra:
        fail("", f"unknown table {extra[0]!r} (write [[claim]] tables)")
    entries = data.get("claim")
    if not isinstance(entries, list) or not entries:
        fail("", "has no [[claim]] table")
    if len(entries) > MAX_CLAIMS:
        fail("", f"has more than {MAX_CLAIMS} claims")
    out = {}
    for number, entry in enumerate(entries, 1):
        cid = entry.get("id") if isinstance(entry.get("id"), str) else None
        where = f"claim {cid}: " if cid else f"claim #{number}: "
        claim = _claim(entry, settings, lambda field, why: fail(f"{where}field {field}: ", why),
                       lambda why: fail(where, why))
        if claim[1].id in out:
            fail(where, "the id is used twice in the file")
        out[claim[1].id] = claim
    return out


def _claim(entry: dict, settings: dict, bad, bad_claim):
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        bad(unknown[0], f"unknown field (fields: {', '.join(FIELDS)})")
    for name in REQUIRED:
        if name not in entry:
            bad(name, "missing")
    for name in ("id", "statement", "source", "setting", "bound", "quantity", "event", "family",
                 "kind"):
        if name in entry and (not isinstance(entry[name], str) or not entry[name].strip()):
            bad(name, "must be a non-empty string")
    if entry["source"] not in SOURCES:
        bad("source", f"must be one of {', '.join(SOURCES)}, got {entry['source']!r}")
    kind = entry.get("kind", "O")
    if kind not in KINDS:
        bad("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    setting = settings.get(entry["setting"])
    if setting is None:
        bad("setting", f"unknown setting {entry['setting']!r} (settings: {', '.join(settings)})")
    if ("quantity" in entry) == ("event" in entry):
        bad_claim("give exactly one of quantity and event")
    if "quantity" in entry:
        for name in ("family", "feature"):
            if name in entry:
                bad(name, "goes with event, not with quantity")
        quantity = setting.quantities.get(entry["quantity"])
        if quantity is None:
            bad("quantity", f"unknown quantity {entry['quantity']!r} of {setting.name} "
                            f"(see icl-verify list)")
    else:
        if setting.event is None:
            bad("event", f"the {setting.name} setting has no events")
        feature = entry.get("feature")
        if feature is not None and (isinstance(feature, bool) or not isinstance(feature, int)
                                    or not 1 <= feature <= 10_000):
            bad("feature", f"must be a whole number >= 1, got {feature!r}")
        try:
            quantity = setting.event(entry["event"], entry.get("family"), feature)
        except EventError as exc:
            bad("event" if str(exc).startswith("event") else "family", str(exc))
    try:
        parse_bound(entry["bound"], quantity.variables)
    except BoundError as exc:
        bad("bound", str(exc))
    region = setting.region
    clauses = entry.get("where")
    if clauses is not None:
        if not isinstance(clauses, dict):
            bad("where", "must be a table such as [claim.where]")
        texts = []
        for var, value in clauses.items():
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                bad(f"where.{var}", f"must be a string or a number, got {value!r}")
            texts.append(f"{var}={value}")
        try:
            region = restrict(region, texts, quantity.variables)
            region.base()
        except WhereError as exc:
            bad("where", str(exc).removeprefix("--where "))
    try:
        claim = Claim(entry["id"], entry["statement"], entry["source"], quantity, entry["bound"],
                      region, kind)
    except (ValueError, BoundError) as exc:
        bad_claim(str(exc))
    return setting, claim
