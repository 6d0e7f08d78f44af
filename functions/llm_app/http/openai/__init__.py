"""OpenAI's Chat Completions API on the chat URL: its requests in, its wire shapes out.

- `request`: a Chat Completions body -> a frozen `ChatCompletionRequest`, or a
  `RequestRefused` (an AppError, llm_app.http.openai.fields) naming the field, as OpenAI's
  API would refuse it.
- `wire`: the renderers (`chat.completion`, `chat.completion.chunk` streams), the models
  list, and errors in OpenAI's shape and statuses (one table from the app's error codes):
  `OPENAI_WIRE`, the wire format of the routes (llm_app.http.edge.WiredRoute).

The routes (`POST /v1/chat/completions`, `GET /v1/models`) are chat's (chat.handler,
chat.completions): the edge answers them as any other.
"""
