"""A local stand-in for a SageMaker real-time endpoint running Hugging Face TGI.

``server.SageMakerTGIServer`` speaks the SageMaker runtime's InvokeEndpoint and
InvokeEndpointWithResponseStream protocol and TGI's (or vLLM's) request/response semantics
(``protocol``, ``tgi_chat``, ``vllm_protocol``) in front of a ``backend.Backend``: the real one,
``transformers_backend.TransformersBackend``, generates on CPU with Hugging Face transformers;
tests plug in scripted ones. ``python -m tools.model_server --help`` serves a model.

Only ``transformers_backend`` imports torch/transformers; the rest is standard library and runs
on Python 3.11 and 3.12.
"""

from tools.model_server.backend import (
    Backend,
    ChatTemplateError,
    GenerateParams,
    Generation,
    GenerationFailure,
    ModelStreamFailure,
    SageMakerError,
)
from tools.model_server.server import SageMakerTGIServer

__all__ = [
    "Backend",
    "ChatTemplateError",
    "GenerateParams",
    "Generation",
    "GenerationFailure",
    "ModelStreamFailure",
    "SageMakerError",
    "SageMakerTGIServer",
]
