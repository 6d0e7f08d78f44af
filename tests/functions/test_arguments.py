import pytest

from llm_app.arguments import bind_arguments, require_question
from llm_app.errors import AppError, ErrorCode

NAMES = ("question", "documents")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (["q"], {"question": "q"}),
        (["q", ["d"]], {"question": "q", "documents": ["d"]}),
        ({"question": "q"}, {"question": "q"}),
        ({"question": "q", "documents": []}, {"question": "q", "documents": []}),
    ],
)
def test_positional_and_named_forms_bind_alike(payload, expected):
    assert bind_arguments(payload, NAMES) == expected


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "1 to 2 argument(s) [question, documents]; got 0"),
        (["q", [], "extra"], "got 3"),
        ({"questoin": "q"}, "Unknown field(s) 'questoin'; expected: question, documents"),
        ({"documents": []}, "Missing field(s): question"),
        ("q", "got str"),
        (7, "got int"),
    ],
)
def test_wrong_shapes_say_what_is_expected(payload, message):
    with pytest.raises(AppError) as caught:
        bind_arguments(payload, NAMES)
    assert caught.value.code is ErrorCode.INVALID_REQUEST
    assert message in caught.value.message


def test_question_is_stripped_and_bounded():
    assert require_question("  Paris?\n", field="q", max_chars=10) == "Paris?"
    with pytest.raises(AppError) as caught:
        require_question("x" * 11, field="q", max_chars=10)
    assert caught.value.status == 413


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        (None, "got null"),
        (1.5, "got a number"),
        ([], "got an array"),
        ({}, "got an object"),
        (True, "got a boolean"),
    ],
)
def test_non_string_questions_name_their_type(value, phrase):
    with pytest.raises(AppError, match=phrase):
        require_question(value, field="q", max_chars=10)
