"""Hypothesis strategies for configurations of the features setting."""
from fractions import Fraction

from hypothesis import strategies as st

from icl_verifier.numerics.features import FeaturesConfig


@st.composite
def probabilities(draw, K: int, kinds=("balanced", "imbalanced", "general")):
    """Exact probability vectors: balanced, the imbalanced family, or integer weights."""
    kind = draw(st.sampled_from(kinds))
    if kind == "balanced":
        return "balanced"
    if kind == "imbalanced":
        p1 = draw(st.fractions(min_value=Fraction(1, 20), max_value=Fraction(19, 20),
                               max_denominator=40))
        return f"imbalanced:{p1}"
    weights = draw(st.lists(st.integers(1, 12), min_size=K, max_size=K))
    return [Fraction(w, sum(weights)) for w in weights]


@st.composite
def configs(draw, K=(2, 5), N=(1, 10), eta=(Fraction(1, 20), Fraction(4)),
            kinds=("balanced", "imbalanced", "general")):
    K = draw(st.integers(*K))
    return FeaturesConfig.make(K, draw(st.integers(*N)), draw(probabilities(K, kinds)),
                               draw(st.fractions(*eta, max_denominator=20)))
