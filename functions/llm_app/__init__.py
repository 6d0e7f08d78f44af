"""Code shared by the chat and document-QA functions, in three layers whose imports point only
down (docs/architecture.md draws them):

- `http`: the edge (`edge.respond`: route, render, map errors, log, metrics, trace), the wire
  formats (`renderers`), the requests (`request`) and the two front doors, each a converter:
  `lambda_handler` (the buffered Lambda handler) and `web` (the ASGI app `server` runs behind
  the Lambda Web Adapter);
- `model`: the typed items an answer is made of (`answer`), the endpoint (`endpoint`,
  `messages_api`), the mapping of its errors (`engine_errors`, `sagemaker_errors`), the budget
  policy every call goes through (`budget`), the chat template and the token estimate;
- `runtime`: the process (`init_phase`, `deferred_packages`, `snap_start`), AWS clients
  (`aws`), metrics and tracing.

Below them all: `config` (settings, read from the environment here only), `errors` (the one
table of error codes and statuses), `arguments`, `identity` and `redaction`.
"""
