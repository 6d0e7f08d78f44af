"""What TGI's and vLLM's chat completion streams share: the walk over a backend's pieces.

Both engines write one chunk per piece of text, the finishing chunks once the generation is
over, one error event if the engine fails on the way (TGI's ``into_openai_event``, vLLM's
``create_streaming_error_response``), and ``data: [DONE]`` last in every case. Each engine
says how its chunks look (``tgi_chat``, ``vllm_protocol``). Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tools.model_server.backend import Generation, GenerationFailure
from tools.model_server.protocol import SSE_DONE


def events(
    pieces: Iterator[str | Generation],
    *,
    text: Callable[[str], Iterator[bytes]],
    end: Callable[[Generation], Iterator[bytes]],
    error: Callable[[str], bytes],
) -> Iterator[bytes]:
    """The SSE events of one generation, each as soon as its piece exists, then ``[DONE]``.

    ``pieces`` is ``Backend.generate_stream``'s iterator; it is closed when the events are
    (the client went away: the generation stops). Errors other than ``GenerationFailure``
    propagate: the server ends the SageMaker stream with ``ModelStreamError``.
    """
    try:
        for piece in pieces:
            if isinstance(piece, Generation):
                yield from end(piece)
                break
            yield from text(piece)
        else:
            raise RuntimeError("the backend's stream ended without its Generation")
    except GenerationFailure as failure:
        yield error(str(failure))
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()
    yield SSE_DONE
