"""Whose conversations a signed caller reaches, under each chat_session_scope."""

import pytest

from llm_app.identity import iam_caller, scoped_caller
from tests.support.events import ALICE, BOB


def test_the_caller_is_the_account_and_the_unique_user_id():
    assert iam_caller(ALICE) == "123456789012:AIDACKCEVSQ6C2EXAMPLE"
    assert iam_caller(BOB) == "123456789012:AROA3XFRBF535PLBIFPI4:bob@example.com"
    assert iam_caller(None) is None
    assert iam_caller({"accountId": "123456789012", "userId": ""}) is None


@pytest.mark.parametrize(
    ("caller", "role_scoped"),
    [
        # An assumed role: its unique id, whatever the session name.
        (
            "123456789012:AROA3XFRBF535PLBIFPI4:botocore-session-1764979200",
            "123456789012:AROA3XFRBF535PLBIFPI4",
        ),
        # An IAM user, a federated user, the root user: no role session to drop.
        ("123456789012:AIDACKCEVSQ6C2EXAMPLE", "123456789012:AIDACKCEVSQ6C2EXAMPLE"),
        ("123456789012:123456789012:carol", "123456789012:123456789012:carol"),
        ("123456789012:123456789012", "123456789012:123456789012"),
    ],
)
def test_role_scope_drops_only_an_assumed_roles_session_name(caller, role_scoped):
    assert scoped_caller(caller, "role") == role_scoped
    assert scoped_caller(caller, "caller") == caller
