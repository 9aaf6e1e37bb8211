"""The marker and negation patterns are tried only where a match can start: they must find exactly what the plain
alternations find, on any text (case folding and Unicode digits included)."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from frontier.routing.features import _CODE_RE, _INTENT_RE, _MATH_RE, CODE_PATTERN, INTENT_PATTERN, MATH_PATTERN
from frontier.routing.scorer import _NEGATION_RE, NEGATION_PATTERN

PLAIN_CODE = re.compile(CODE_PATTERN, re.MULTILINE)
PLAIN_MATH = re.compile(MATH_PATTERN, re.IGNORECASE)
PLAIN_NEGATION = re.compile(NEGATION_PATTERN, re.IGNORECASE)
PLAIN_INTENT = re.compile(INTENT_PATTERN, re.IGNORECASE)
FRAGMENTS = [
    "solve", "SOLVE", "ſolve", "equation", "İntegral", "ıntegral", "derivative", "prove", "PROBABILITY", "how many",
    "Calculate", "compute", "def f(", "class A", "import os", "#include", "function", "=>", "return", "SELECT",
    "select", "```", ";", "{", "\n", " ", "\\frac", "\\sqrt", "%", "$3", "12 + 3", "٣*٤", "7=7", "a", "é", "K", "not", "NEVER", "cannot", "no", "łeast",
    "except", "False", "incorrect", "think step by step", "Think hard", "reason carefully", "show your work",
    "explain your reasoning", "let's think", "lets think", "ſhow the reasoning",
]
TEXTS = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3)), max_size=40).map("".join)


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_prefiltered_patterns_match_what_the_plain_ones_match(text):
    assert _CODE_RE.findall(text) == PLAIN_CODE.findall(text)
    assert _MATH_RE.findall(text) == PLAIN_MATH.findall(text)
    assert _NEGATION_RE.findall(text) == PLAIN_NEGATION.findall(text)
    assert _INTENT_RE.findall(text) == PLAIN_INTENT.findall(text)


def test_the_prefilter_still_finds_every_kind_of_marker():
    code = "```\ndef f(x):\n    return x;\nclass A {\nimport os\n#include <x>\nfunction g() => 1\nSELECT 1"
    math = "Solve the equation 3 + 4 = x, the integral and derivative; prove how many; calculate, compute 5% of $3 \\frac \\sqrt"
    assert len(_CODE_RE.findall(code)) == len(PLAIN_CODE.findall(code)) == 11
    assert len(_MATH_RE.findall(math)) == len(PLAIN_MATH.findall(math)) == 13
