"""Patches that close the gaps between moto 5.2.5 and what the Terraform stack calls.

They run inside the moto server process only (see ``tools.devstack.moto_server``), never in a test
process, so moto's in-process mocks elsewhere in the suite are untouched. Each patch makes moto
accept a real AWS request that it rejects or does not implement; none of them loosens a check
that AWS itself performs, so the product code needs no moto-only path.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

# SageMaker real-time instance families that moto 5.2.5's endpoint-config validator predates.
# The product default is ml.g5.xlarge, so without this CreateEndpointConfig fails on moto.
EXTRA_SAGEMAKER_INSTANCE_FAMILIES = (
    "g5",
    "g6",
    "g6e",
    "p4d",
    "p4de",
    "p5",
    "p5e",
    "p5en",
    "inf2",
    "trn1",
    "c6i",
    "c7i",
    "m6i",
    "m7i",
    "r6i",
    "r7i",
)
_EXTRA_INSTANCE_TYPE = re.compile(
    r"^ml\.(" + "|".join(EXTRA_SAGEMAKER_INSTANCE_FAMILIES) + r")\.(\d+)?x?large$"
)

_applied = False


def apply() -> None:
    """Apply every patch once; later calls are no-ops."""
    global _applied  # noqa: PLW0603 - one process-wide switch is the point
    if _applied:
        return
    _patch_sagemaker_instance_types()
    _patch_sagemaker_empty_structures()
    _patch_application_autoscaling_tags()
    _patch_lambda_permissions()
    _patch_lambda_snap_start()
    _patch_lambda_qualified_function_urls()
    _patch_lambda_alias_permissions()
    _applied = True


def _patch_sagemaker_instance_types() -> None:
    from moto.sagemaker.models import FakeEndpointConfig

    original = FakeEndpointConfig.validate_instance_type

    def validate_instance_type(self: Any, instance_type: str) -> None:
        if _EXTRA_INSTANCE_TYPE.match(instance_type):
            return
        original(self, instance_type)

    FakeEndpointConfig.validate_instance_type = validate_instance_type  # type: ignore[method-assign]


def _patch_sagemaker_empty_structures() -> None:
    """Omit empty optional structures (VpcConfig, DataCaptureConfig) from Describe* answers.

    AWS leaves them out when they were not given; moto answers ``{}``, which the provider reads
    as a configured block and plans to replace the model and endpoint configuration again on
    every run, so an unchanged stack would never plan clean.
    """
    from moto.core.responses import ActionResult
    from moto.sagemaker.responses import SageMakerResponse

    for action in ("describe_model", "describe_endpoint_config"):
        original = getattr(SageMakerResponse, action)

        def describe(self: Any, _original: Any = original) -> Any:
            result = _original(self)
            if isinstance(result, ActionResult) and isinstance(result.result, dict):
                return ActionResult({k: v for k, v in result.result.items() if v != {}})
            return result

        setattr(SageMakerResponse, action, describe)


def _patch_application_autoscaling_tags() -> None:
    """Add ListTagsForResource, TagResource and UntagResource; keep RegisterScalableTarget's Tags.

    Without ListTagsForResource the provider retries its post-create tag read on
    aws_appautoscaling_target for minutes before failing.
    """
    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse

    def tags_of(backend: Any) -> dict[str, dict[str, str]]:
        # Lazily attached: backends are created per account and region on first use.
        if not hasattr(backend, "devstack_tags"):
            backend.devstack_tags = {}
        return backend.devstack_tags

    original_register = ApplicationAutoScalingResponse.register_scalable_target
    original_deregister = ApplicationAutoscalingBackend.deregister_scalable_target

    def register_scalable_target(self: Any) -> str:
        body = original_register(self)
        tags = self._get_param("Tags") or {}
        if tags:
            arn = json.loads(body)["ScalableTargetARN"]
            tags_of(self.applicationautoscaling_backend).setdefault(arn, {}).update(tags)
        return body

    def deregister_scalable_target(self: Any, namespace: str, r_id: str, dimension: str) -> None:
        target = self.targets.get(dimension, {}).get(r_id)
        original_deregister(self, namespace, r_id, dimension)
        if target is not None:
            tags_of(self).pop(target.arn, None)

    def list_tags_for_resource(self: Any) -> str:
        arn = self._get_param("ResourceARN")
        return json.dumps({"Tags": tags_of(self.applicationautoscaling_backend).get(arn, {})})

    def tag_resource(self: Any) -> str:
        arn = self._get_param("ResourceARN")
        tags = self._get_param("Tags") or {}
        tags_of(self.applicationautoscaling_backend).setdefault(arn, {}).update(tags)
        return "{}"

    def untag_resource(self: Any) -> str:
        arn = self._get_param("ResourceARN")
        current = tags_of(self.applicationautoscaling_backend).get(arn, {})
        for key in self._get_param("TagKeys") or []:
            current.pop(key, None)
        return "{}"

    ApplicationAutoScalingResponse.register_scalable_target = register_scalable_target  # type: ignore[method-assign]
    ApplicationAutoscalingBackend.deregister_scalable_target = deregister_scalable_target  # type: ignore[method-assign]
    ApplicationAutoScalingResponse.list_tags_for_resource = list_tags_for_resource  # type: ignore[attr-defined]
    ApplicationAutoScalingResponse.tag_resource = tag_resource  # type: ignore[attr-defined]
    ApplicationAutoScalingResponse.untag_resource = untag_resource  # type: ignore[attr-defined]


def _patch_lambda_permissions() -> None:
    """AddPermission as AWS does it: unique statement ids, and FunctionUrlAuthType as a condition.

    moto appends a second statement under an existing id, where AWS answers 409. The provider
    adds `FunctionURLAllowPublicAccess` itself when it creates a NONE URL and relies on that 409
    when the statement exists already; with moto's duplicate, deleting the permission leaves
    its twin behind and the provider waits five minutes for it to go.
    """
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda.policy import Policy

    class StatementIdConflict(LambdaClientError):
        code = 409

        def __init__(self, sid: str) -> None:
            super().__init__(
                "ResourceConflictException",
                f"The statement id ({sid}) provided already exists. Please provide a new "
                "statement id, or remove the existing statement.",
            )

    original = Policy.add_statement

    def add_statement(self: Any, raw: str, qualifier: str | None = None) -> tuple[Any, str]:
        sid = json.loads(raw).get("StatementId")
        if sid is not None and any(s.get("Sid") == sid for s in self.statements):
            raise StatementIdConflict(sid)
        statement, revision = original(self, raw, qualifier)
        auth_type = statement.pop("FunctionUrlAuthType", None)
        if auth_type is not None:
            condition = statement.setdefault("Condition", {})
            condition.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = auth_type
        return statement, revision

    Policy.add_statement = add_statement  # type: ignore[method-assign]


def _patch_lambda_snap_start() -> None:
    """Keep a function's SnapStart setting and answer it as AWS does.

    moto answers ``{"ApplyOn": "None"}`` whatever was asked, so the provider would plan to turn
    SnapStart on again after every apply. AWS reports ``OptimizationStatus`` ``On`` for the
    published versions of a function with ``ApplyOn = PublishedVersions`` and ``Off`` for
    ``$LATEST``. Nothing is snapshotted: moto runs no code, and the local Function URLs start
    each function's init afresh (see docs/local-stack.md).
    """
    from moto.awslambda.models import LambdaFunction

    original_init = LambdaFunction.__init__
    original_update = LambdaFunction.update_configuration
    original_configuration = LambdaFunction.get_configuration

    def remember(function: Any, spec: dict[str, Any]) -> None:
        if "SnapStart" in spec:
            apply_on = (spec["SnapStart"] or {}).get("ApplyOn") or "None"
            if apply_on not in ("PublishedVersions", "None"):
                raise ValueError(f"SnapStart.ApplyOn must be PublishedVersions or None: {apply_on}")
            function.devstack_snap_start = apply_on

    def __init__(
        self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any
    ) -> None:
        original_init(self, account_id, spec, *args, **kwargs)
        self.devstack_snap_start = "None"
        remember(self, spec)

    def update_configuration(self: Any, config: dict[str, Any]) -> Any:
        result = original_update(self, config)
        remember(self, config)
        return result

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        configuration = original_configuration(self, *args, **kwargs)
        apply_on = getattr(self, "devstack_snap_start", "None")
        published = str(self.version) != "$LATEST"
        on = apply_on == "PublishedVersions" and published
        status = "On" if on else "Off"
        configuration["SnapStart"] = {"ApplyOn": apply_on, "OptimizationStatus": status}
        return configuration

    LambdaFunction.__init__ = __init__  # type: ignore[method-assign]
    LambdaFunction.update_configuration = update_configuration  # type: ignore[method-assign]
    LambdaFunction.get_configuration = get_configuration  # type: ignore[method-assign]


def _patch_lambda_qualified_function_urls() -> None:
    """Function URLs per qualifier (an alias), as AWS keeps them.

    moto ignores the ``Qualifier`` of the Function URL calls and keeps one URL per function,
    so a URL on an alias would read back as the unqualified function's, and the function's
    unqualified URL would seem to exist. Here each qualifier (None: unqualified) has its own
    URL, the answer's ``FunctionArn`` names the alias, and a URL that does not exist for the
    asked qualifier is ResourceNotFoundException, as on AWS. A qualifier must be an alias of
    the function (AWS refuses versions and $LATEST there).
    """
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda.models import FunctionUrlConfig
    from moto.awslambda.responses import LambdaResponse

    class NotFound(LambdaClientError):
        code = 404

        def __init__(self, message: str) -> None:
            super().__init__("ResourceNotFoundException", message)

    class InvalidQualifier(LambdaClientError):
        code = 400

        def __init__(self, message: str) -> None:
            super().__init__("InvalidParameterValueException", message)

    def target(response: Any) -> tuple[Any, str | None, dict[str | None, Any]]:
        name = unquote(response.path.split("/")[-2])
        qualifier = response.querystring.get("Qualifier", [None])[0]
        backend = response.backend
        function = backend._lambdas.get_function_by_name_or_arn_forbid_qualifier(name)
        if qualifier is not None and qualifier not in backend._lambdas._get_function_aliases(
            function.function_name
        ):
            raise InvalidQualifier(f"{qualifier} is not an alias of {function.function_name}")
        if not hasattr(function, "devstack_urls"):
            function.devstack_urls = {}
        return function, qualifier, function.devstack_urls

    def as_dict(config: Any, qualifier: str | None) -> dict[str, Any]:
        answer = config.to_dict()
        if qualifier is not None:
            answer["FunctionArn"] = f"{answer['FunctionArn']}:{qualifier}"
        return answer

    def existing(urls: dict[str | None, Any], function: Any, qualifier: str | None) -> Any:
        if qualifier not in urls:
            where = f"{function.function_name}:{qualifier}" if qualifier else function.function_name
            raise NotFound(f"The resource you requested does not exist: Function URL of {where}")
        return urls[qualifier]

    def create_function_url_config(self: Any) -> Any:
        function, qualifier, urls = target(self)
        if qualifier in urls:
            raise LambdaClientError(
                "ResourceConflictException", "Failed to create function url config: it exists"
            )
        urls[qualifier] = FunctionUrlConfig(function=function, config=self.json_body)
        return 201, {"status": 201}, json.dumps(as_dict(urls[qualifier], qualifier))

    def get_function_url_config(self: Any) -> Any:
        function, qualifier, urls = target(self)
        config = existing(urls, function, qualifier)
        return 200, {"status": 200}, json.dumps(as_dict(config, qualifier))

    def update_function_url_config(self: Any) -> Any:
        function, qualifier, urls = target(self)
        config = existing(urls, function, qualifier)
        config.update(self.json_body)
        return 200, {"status": 200}, json.dumps(as_dict(config, qualifier))

    def delete_function_url_config(self: Any) -> Any:
        function, qualifier, urls = target(self)
        existing(urls, function, qualifier)
        del urls[qualifier]
        return 204, {"status": 204}, "{}"

    LambdaResponse.create_function_url_config = create_function_url_config  # type: ignore[method-assign]
    LambdaResponse.get_function_url_config = get_function_url_config  # type: ignore[method-assign]
    LambdaResponse.update_function_url_config = update_function_url_config  # type: ignore[method-assign]
    LambdaResponse.delete_function_url_config = delete_function_url_config  # type: ignore[method-assign]


def _patch_lambda_alias_permissions() -> None:
    """Resource-policy statements on an alias stay with the alias, as on AWS.

    moto files a statement added with an alias as ``Qualifier`` under the version the alias
    points at, so when a new version is published and the alias moves (every code change, with
    ``publish = true``), the alias seems to lose its public URL statements and the provider
    plans to add them again. Here each alias has its own policy, on the function.
    """
    from moto.awslambda.models import LambdaBackend
    from moto.awslambda.policy import Policy
    from moto.awslambda.responses import LambdaResponse

    def alias_policy(backend: Any, function_name: str, qualifier: str | None) -> Any:
        if not qualifier:
            return None
        function = backend._lambdas.get_function_by_name_or_arn_forbid_qualifier(function_name)
        if qualifier not in backend._lambdas._get_function_aliases(function.function_name):
            return None  # a version: moto's own handling
        policies = function.__dict__.setdefault("devstack_alias_policies", {})
        return policies.setdefault(qualifier, Policy(function))

    original_add = LambdaBackend.add_permission
    original_get = LambdaBackend.get_policy
    original_remove = LambdaResponse.remove_permission

    def add_permission(self: Any, function_name: str, qualifier: str, raw: str) -> Any:
        policy = alias_policy(self, function_name, qualifier)
        if policy is None:
            return original_add(self, function_name, qualifier, raw)
        statement, _ = policy.add_statement(raw, qualifier)
        return statement

    def get_policy(self: Any, function_name: str, qualifier: str | None = None) -> str:
        policy = alias_policy(self, function_name, qualifier)
        if policy is None:
            return original_get(self, function_name, qualifier)
        return str(policy.wire_format())

    def remove_permission(self: Any) -> Any:
        function_name = unquote(self.path.split("/")[-3])
        statement_id = self.path.split("/")[-1].split("?")[0]
        qualifier = self.querystring.get("Qualifier", [None])[0]
        policy = alias_policy(self.backend, function_name, qualifier)
        if policy is None:
            return original_remove(self)
        policy.del_statement(statement_id, (self.querystring.get("RevisionId") or [""])[0])
        return 204, {"status": 204}, "{}"

    LambdaBackend.add_permission = add_permission  # type: ignore[method-assign]
    LambdaBackend.get_policy = get_policy  # type: ignore[method-assign]
    LambdaResponse.remove_permission = remove_permission  # type: ignore[method-assign]
