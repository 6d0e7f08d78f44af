#!/bin/sh
# The start script of the streaming front door (response_streaming = true), at the zip's root.
#
# AWS's Lambda Web Adapter is the function's exec wrapper (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap):
# it runs this file as $LAMBDA_TASK_ROOT/$_HANDLER (the function's handler is "run.sh"), polls
# GET / until the app answers, then forwards each Function URL request to it over HTTP and
# streams the response back. `make package` writes it into each function's zip (mode 0755)
# with the function's package (chat or qa) filled in below.
#
# The app is the function's own routes (llm_app/http/web.py) served by uvicorn
# (llm_app/http/server.py) from the layer (/opt/python), run by the Lambda runtime's Python
# (python3 on the runtime's PATH), and reachable only from inside the execution environment (127.0.0.1).
set -eu
task_root="${LAMBDA_TASK_ROOT:-$(cd "$(dirname "$0")" && pwd)}"
export PYTHONPATH="/opt/python:${task_root}${PYTHONPATH:+:${PYTHONPATH}}"
cd "$task_root"
exec python3 -m llm_app.http.server @FUNCTION@.handler \
  --host 127.0.0.1 --port "${AWS_LWA_PORT:-${PORT:-8080}}"
