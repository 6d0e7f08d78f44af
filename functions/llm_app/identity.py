"""Who called: the signed caller of an AWS_IAM URL, and whose conversations it reaches.

Both front doors read the same thing: the Function URL event's `requestContext.authorizer.iam`
(the Lambda Web Adapter passes that requestContext as the `x-amzn-request-context` header).
Lambda fills it only for a request it verified; callers must be kept from invoking the function
directly with a hand-made event (the `lambda:InvokedViaFunctionUrl` condition, README).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# chat_session_scope: "caller" = account + userId (today's rule), "role" = account + the
# role's unique id, whatever the session name.
SESSION_SCOPES: Final = ("caller", "role")
# An assumed role's userId is "<role unique id>:<session name>"; role unique ids start so.
ROLE_ID_PREFIX: Final = "AROA"


def iam_caller(iam: object) -> str | None:
    """Who signed the request, as Lambda verified it: "<accountId>:<userId>", None if unsigned.

    userId is AIDA... for an IAM user, AROA...:<session name> for an assumed role,
    <account>:<name> for a federated user: unique ids, so a deleted and re-created user or
    role of the same name is a different caller (userArn would not tell them apart).
    """
    if not isinstance(iam, Mapping):
        return None
    account, user = iam.get("accountId"), iam.get("userId")
    if not (isinstance(account, str) and account and isinstance(user, str) and user):
        return None
    return f"{account}:{user}"


def scoped_caller(caller: str, scope: str) -> str:
    """The identity conversations belong to under `scope`.

    "role" drops an assumed role's session name, so every session of one role (each ECS task,
    each process with its own botocore-session-<timestamp>) reaches the same conversations.
    IAM users, federated users and root have no role session, and keep their own identity.
    """
    if scope != "role":
        return caller
    account, _, user = caller.partition(":")
    role_id, separator, _session_name = user.partition(":")
    if separator and role_id.startswith(ROLE_ID_PREFIX):
        return f"{account}:{role_id}"
    return caller
