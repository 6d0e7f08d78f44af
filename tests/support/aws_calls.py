"""The AWS operations the functions' own code makes, as IAM actions on resource ARNs.

A botocore ``before-parameter-build`` hook (it sees the operation's own parameters) on boto3's
default session, which the functions build their
clients from at import. A call counts only when a frame of ``functions/`` is on the stack, so
the test's own clients (moto set-up, reading the table back) never count as the code's.
The least-privilege test compares what is recorded here with the roles Terraform creates.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from tools.paths import REPO_ROOT

FUNCTIONS_DIR = str(REPO_ROOT / "functions") + "/"


@dataclass(frozen=True, order=True)
class Call:
    action: str  # the IAM action: "<signing name>:<operation>", e.g. "dynamodb:Query"
    resource: str  # the ARN the operation acts on


# How an operation's parameters name the resource it acts on, per IAM service prefix. A call
# to a service missing here fails the recording: add how that service's ARNs are formed.
ResourceArn = Callable[[Mapping[str, Any], str, str], str]
RESOURCE_ARNS: Mapping[str, ResourceArn] = {
    "dynamodb": lambda params, region, account: (
        f"arn:aws:dynamodb:{region}:{account}:table/{params['TableName']}"
    ),
    # SageMaker ARNs carry the endpoint name in lower case.
    "sagemaker": lambda params, region, account: (
        f"arn:aws:sagemaker:{region}:{account}:endpoint/{params['EndpointName'].lower()}"
    ),
    "s3": lambda params, region, account: (
        f"arn:aws:s3:::{params['Bucket']}/{params['Key']}"
        if "Key" in params
        else f"arn:aws:s3:::{params['Bucket']}"
    ),
}


# Operations whose IAM actions are not just their own name. AWS's documents disagree on the
# streamed invocation: its API reference says it needs sagemaker:InvokeEndpoint, while the
# Service Authorization Reference lists sagemaker:InvokeEndpointWithResponseStream as an action
# of its own. The streaming roles are granted both (only AWS can settle which one IAM checks).
IAM_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "sagemaker:InvokeEndpointWithResponseStream": (
        "sagemaker:InvokeEndpoint",
        "sagemaker:InvokeEndpointWithResponseStream",
    ),
}


@dataclass
class CallRecorder:
    region: str
    account_id: str
    calls: set[Call] = field(default_factory=set)
    unknown: list[str] = field(default_factory=list)

    def before_parameter_build(self, model: Any, params: Mapping[str, Any], **_: Any) -> None:
        if not _called_from_functions():
            return
        prefix = model.service_model.signing_name
        operation = f"{prefix}:{model.name}"
        to_arn = RESOURCE_ARNS.get(prefix)
        if to_arn is None:
            self.unknown.append(operation)
            return
        for action in IAM_ACTIONS.get(operation, (operation,)):
            self.calls.add(Call(action, to_arn(params, self.region, self.account_id)))


@contextmanager
def recording_function_calls(region: str, account_id: str) -> Iterator[CallRecorder]:
    """Record the calls of the clients built inside the block (import the handlers in it),
    made in ``region`` (the functions' AWS_REGION) by ``account_id``."""
    recorder = CallRecorder(region, account_id)
    previous = boto3.DEFAULT_SESSION
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-parameter-build", recorder.before_parameter_build)
    try:
        yield recorder
    finally:
        boto3.DEFAULT_SESSION = previous
    assert recorder.unknown == [], (
        f"the functions called {recorder.unknown}: add its service to RESOURCE_ARNS"
    )


def _called_from_functions() -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.startswith(FUNCTIONS_DIR):
            return True
        frame = frame.f_back
    return False
