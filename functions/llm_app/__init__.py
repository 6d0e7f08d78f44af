"""Code shared by the chat and document-QA functions.

Each module has one job: `config` reads the environment once, `errors` is the error table,
`function_url` reads Function URL requests, `model` binds LangChain to the TGI endpoint,
`generation` holds what the domain returns (an answer's text as it comes, then its fields),
`tokens` budgets prompts against the model's input limit, `service` runs one request and
renders its answer (JSON, Server-Sent Events or text) for both front doors: the buffered
Lambda handlers and `web`, the ASGI app the start script serves behind the Lambda Web Adapter.
"""
