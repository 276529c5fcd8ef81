import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yiwu_credit.data import uscc

KNOWN_VALID = ["91350100M000100Y43", "91330782MA2X000198", "91110000600037341L", "91512081MA62K0260E"]


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_known_valid_codes(code):
    assert uscc.is_valid(code)
    assert uscc.check_char(code[:17]) == code[17]


def test_gb_example_check_character_and_invalid_variant():
    assert uscc.check_char("91350100M000100Y4") == "3"
    assert not uscc.is_valid("91350100M000100Y4Z")


@pytest.mark.parametrize("bad, reason", [
    ("91350100M000100Y44", "wrong check character"),
    ("91350100M000100Y4", "not 18 characters"),
    ("91350100I000100Y43", "character outside"),
    ("91350100m000100Y43", "character outside"),
    (None, "missing"),
])
def test_invalid_reasons(bad, reason):
    assert not uscc.is_valid(bad)
    assert reason in uscc.invalid_reasons([bad])[0]


def test_check_char_rejects_bad_input():
    with pytest.raises(ValueError):
        uscc.check_char("123")
    with pytest.raises(ValueError):
        uscc.check_char("9135010OM000100Y4")


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(list(uscc.ENTITY_TYPE_PREFIX)))
def test_generated_codes_validate_and_encode_type(seed, kind):
    codes = uscc.generate(20, np.random.default_rng(seed), kind)
    assert all(uscc.is_valid(c) for c in codes)
    assert all(c[:2] == uscc.ENTITY_TYPE_PREFIX[kind] and c[2:8] == uscc.YIWU_DIVISION for c in codes)
    assert all(r is None for r in uscc.invalid_reasons(codes))


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), pos=st.integers(0, 17), shift=st.integers(1, 30))
def test_every_single_character_change_is_caught(seed, pos, shift):
    code = uscc.generate(1, np.random.default_rng(seed))[0]
    c = uscc.CHARSET[(uscc.CHARSET.index(code[pos]) + shift) % 31]
    changed = code[:pos] + c + code[pos + 1:]
    assert changed != code
    assert not uscc.is_valid(changed)
    assert uscc.invalid_reasons([changed])[0] is not None


def test_vectorised_and_scalar_agree():
    rng = np.random.default_rng(3)
    codes = list(uscc.generate(500, rng))
    codes += [c[:-1] + ("0" if c[-1] != "0" else "1") for c in codes[:200]]
    vec = uscc.invalid_reasons(codes)
    assert [r is None for r in vec] == [uscc.is_valid(c) for c in codes]
