"""Patches that close the gaps between moto 5.2.5 and what the Terraform stack calls.

They run inside the moto server process only (see ``devstack.moto_server``), never in a test
process, so moto's in-process mocks elsewhere in the suite are untouched. Each patch makes moto
accept a real AWS request that it rejects or does not implement; none of them loosens a check
that AWS itself performs, so the product code needs no moto-only path.
"""

from __future__ import annotations

import json
import re
from typing import Any

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
    from moto.sagemaker.models import FakeEndpointConfig, Model

    for cls in (Model, FakeEndpointConfig):
        original = cls.response_object

        def response_object(self: Any, _original: Any = original) -> dict[str, Any]:
            return {k: v for k, v in _original.fget(self).items() if v != {}}

        cls.response_object = property(response_object)  # type: ignore[assignment,method-assign]


def _patch_application_autoscaling_tags() -> None:
    """Add ListTagsForResource/TagResource/UntagResource and keep the Tags of RegisterScalableTarget.

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
