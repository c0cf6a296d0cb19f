"""Strategies for the sweep layer: good run configs and bad config files.

`bad_configs` builds config dicts that a config dataclass must refuse, each with the
names of the fields an error may name: one field with a wrong type or an out-of-range
value, an unknown field, or a contradictory pair of fields.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st

from tests.sweep.workfns import ToyRunConfig

# Values of the wrong JSON type for a number / a string / a bool field.
not_a_number = st.one_of(st.text(max_size=5), st.none(), st.booleans(),
                         st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))
# A float is never an integer field, not even 2.0: JSON configs must say 2.
not_an_integer = st.one_of(not_a_number, st.floats())
not_a_string = st.one_of(st.integers(), st.floats(allow_nan=False), st.none(), st.booleans(), st.lists(st.integers(), max_size=2))
not_a_bool = st.one_of(st.integers(), st.text(max_size=4), st.none(), st.floats(allow_nan=False))


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """A config field: values it must accept and values it must refuse."""

    valid: st.SearchStrategy[Any]
    invalid: st.SearchStrategy[Any]


def bad_configs(specs: Mapping[str, FieldSpec], *, required: Sequence[str] = (),
                contradictions: Sequence[st.SearchStrategy[dict[str, Any]]] = (),
                ) -> st.SearchStrategy[tuple[frozenset[str], dict[str, Any]]]:
    """(fields an error may name, config dict) where the dict is invalid in exactly one way."""

    @st.composite
    def one_bad_value(draw):
        base = {name: draw(spec.valid) for name, spec in specs.items()
                if name in required or draw(st.booleans())}
        field = draw(st.sampled_from(sorted(specs)))
        base[field] = draw(specs[field].invalid)
        return frozenset({field}), base

    @st.composite
    def unknown_field(draw):
        base = {name: draw(specs[name].valid) for name in required}
        name = draw(st.text(string.ascii_lowercase + "_", min_size=1, max_size=12).filter(lambda n: n not in specs))
        base[name] = draw(st.one_of(st.integers(), st.text(max_size=3)))
        return frozenset({name}), base

    @st.composite
    def missing_field(draw):
        base = {name: draw(specs[name].valid) for name in required}
        field = draw(st.sampled_from(sorted(required)))
        del base[field]
        return frozenset({field}), base

    @st.composite
    def contradiction(draw):
        base = {name: draw(specs[name].valid) for name in required}
        pair = draw(st.one_of(*contradictions))
        return frozenset(pair), {**base, **pair}

    options = [one_bad_value(), unknown_field()]
    if required:
        options.append(missing_field())
    if contradictions:
        options.append(contradiction())
    return st.one_of(*options)


TOY_SPECS = {
    "target": FieldSpec(st.floats(-100, 100), st.one_of(not_a_number, st.floats(min_value=1e7, max_value=1e300),
                                                         st.just(float("inf")))),
    "rate": FieldSpec(st.floats(0.01, 1.0), st.one_of(not_a_number, st.floats(max_value=0.0, allow_nan=False),
                                                       st.floats(min_value=1.0001, allow_nan=False))),
    "steps": FieldSpec(st.integers(1, 5), st.one_of(not_an_integer, st.integers(max_value=0))),
    "seed": FieldSpec(st.integers(0, 10), st.one_of(not_an_integer, st.integers(max_value=-1))),
    "group": FieldSpec(st.sampled_from(["a", "b"]), st.one_of(not_a_string, st.just(""))),
    "fail": FieldSpec(st.just(False), not_a_bool),
}


def toy_configs() -> st.SearchStrategy[ToyRunConfig]:
    return st.builds(ToyRunConfig, target=TOY_SPECS["target"].valid, rate=TOY_SPECS["rate"].valid,
                     steps=TOY_SPECS["steps"].valid, seed=TOY_SPECS["seed"].valid,
                     group=TOY_SPECS["group"].valid)


def bad_toy_configs():
    return bad_configs(TOY_SPECS, required=("target",))
