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
                exclusive: Mapping[str, str] = {},
                ) -> st.SearchStrategy[tuple[frozenset[str], dict[str, Any]]]:
    """(fields an error may name, config dict) where the dict is invalid in exactly one way.

    ``exclusive`` maps a field to one it must not appear with (the other is dropped when
    the first is set to a bad value, so that the dict is wrong in that one way only).
    """

    @st.composite
    def one_bad_value(draw):
        base = {name: draw(spec.valid) for name, spec in specs.items()
                if name in required or draw(st.booleans())}
        field = draw(st.sampled_from(sorted(specs)))
        base[field] = draw(specs[field].invalid)
        for a, b in exclusive.items():
            if field == a:
                base.pop(b, None)
            elif a in base and b in base:
                del base[a]
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


def _name_not(*allowed: str):
    return st.one_of(not_a_string, st.text(string.ascii_letters + "_-0123456789 ", max_size=8).filter(
        lambda t: t not in allowed and not t.startswith("cuda")))


def _int_spec(valid, lo):
    return FieldSpec(valid, st.one_of(not_an_integer, st.integers(max_value=lo - 1)))


# Flat fields of a `"kind": "train"` grid file (circeff.sweep.engine) with tiny valid values.
TRAIN_SPECS = {
    "task": FieldSpec(st.sampled_from(["add", "sub", "mul"]), _name_not("add", "sub", "mul", "div", "perm",
                                                                        "x2_plus_y2", "x2_xy_y2", "x2_xy_y2_x",
                                                                        "x3_xy", "div_or_sub")),
    "p": FieldSpec(st.sampled_from([7, 11, 13]), st.one_of(not_an_integer, st.integers(max_value=1),
                                                          st.integers(min_value=10**4))),
    "random_labels": FieldSpec(st.booleans(), not_a_bool),
    "label_seed": _int_spec(st.integers(0, 3), 0),
    "d_model": _int_spec(st.integers(4, 16), 1),
    "n_heads": _int_spec(st.integers(1, 2), 1),
    "d_head": _int_spec(st.integers(2, 8), 1),
    "d_mlp": _int_spec(st.integers(4, 16), 1),
    "seed": _int_spec(st.integers(0, 5), 0),
    "data_seed": _int_spec(st.integers(0, 5), 0),
    "weight_decay": FieldSpec(st.floats(0, 2), st.one_of(not_a_number, st.floats(max_value=-1e-9),
                                                         st.just(float("nan")), st.just(float("inf")))),
    "train_frac": FieldSpec(st.floats(0.2, 0.9), st.one_of(not_a_number, st.floats(max_value=0.0),
                                                           st.floats(min_value=1.0001))),
    "train_size": FieldSpec(st.integers(5, 40), st.one_of(not_an_integer, st.integers(max_value=0),
                                                          st.integers(min_value=10**9, max_value=10**12))),
    "steps": _int_spec(st.integers(0, 3), 0),
    "lr": FieldSpec(st.floats(1e-4, 1e-2), st.one_of(not_a_number, st.floats(max_value=0.0))),
    "beta1": FieldSpec(st.floats(0, 0.99), st.one_of(not_a_number, st.floats(min_value=1.0), st.floats(max_value=-1e-9))),
    "beta2": FieldSpec(st.floats(0, 0.999), st.one_of(not_a_number, st.floats(min_value=1.0), st.floats(max_value=-1e-9))),
    "eps": FieldSpec(st.floats(1e-9, 1e-6), st.one_of(not_a_number, st.floats(max_value=0.0))),
    "log_every": _int_spec(st.integers(1, 10), 1),
    "checkpoint_every": _int_spec(st.integers(1, 10), 1),
    "device": FieldSpec(st.just("cpu"), _name_not("cpu")),
    "chunk_size": FieldSpec(st.integers(1, 4), st.one_of(not_an_integer, st.integers(max_value=0))
                            .filter(lambda v: v is not None)),  # None is allowed: "automatic"
    "nan_policy": FieldSpec(st.sampled_from(["freeze", "stop"]), _name_not("freeze", "stop")),
}


def bad_train_configs():
    both = st.fixed_dictionaries({"train_frac": TRAIN_SPECS["train_frac"].valid,
                                  "train_size": TRAIN_SPECS["train_size"].valid})
    def either_name_when_neither_given(case):
        fields, base = case
        # None counts as not given (the CLI and the grid builder treat it so)
        if base.get("train_frac") is None and base.get("train_size") is None:
            fields = fields | {"train_frac", "train_size"}  # the pair is at fault, either may be named
        return fields, base

    return bad_configs(TRAIN_SPECS, required=("train_frac",), contradictions=[both],
                       exclusive={"train_size": "train_frac"}).map(either_name_when_neither_given)
