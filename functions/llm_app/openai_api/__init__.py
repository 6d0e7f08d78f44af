"""OpenAI's Chat Completions API on the chat URL: its requests in, its wire shapes out.

- `request`: a Chat Completions body -> a frozen `ChatCompletionRequest`, or a
  `RequestRefused` (an AppError) naming the field, as OpenAI's API would refuse it.
- `wire`: `chat.completion` bodies, `chat.completion.chunk` streams, the models list, and
  errors in OpenAI's shape and statuses (one table from the app's error codes).

Pure functions over dicts and bytes: no HTTP framework, no model call. The routes
(`POST /v1/chat/completions`, `GET /v1/models`) render the domain's stream with them.
"""
