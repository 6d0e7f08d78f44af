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
port="${AWS_LWA_PORT:-${PORT:-8080}}"
export PYTHONPATH="/opt/python:${task_root}${PYTHONPATH:+:${PYTHONPATH}}"
cd "$task_root"

# A start that never gets ready must fail the init, not hold it: the adapter polls its
# readiness check with no limit of its own, and with SnapStart this init runs while
# `terraform apply` publishes the version. uvicorn listens only once the function's module
# has imported, so an app that does not listen within START_TIMEOUT_SECONDS is stopped with
# SIGABRT: faulthandler (-X faulthandler) writes every thread's stack to the log, and Lambda
# fails the init with the runtime's exit. An app that fails on its own exits at once.
start_timeout="${START_TIMEOUT_SECONDS:-10}"
app_pid=$$
listening() {
  hex_port=$(printf ':%04X' "$port")
  while read -r _ local_address _ state _; do
    case "$local_address" in *"$hex_port") [ "$state" = 0A ] && return 0 ;; esac
  done </proc/net/tcp
  return 1
}
(
  waited=0
  while [ "$waited" -lt "$start_timeout" ]; do
    sleep 1
    kill -0 "$app_pid" 2>/dev/null || exit 0
    listening && exit 0
    waited=$((waited + 1))
  done
  echo "run.sh: the app is not listening on port $port after ${start_timeout}s" \
    "(START_TIMEOUT_SECONDS): stopping it; its threads' stacks follow" >&2
  kill -ABRT "$app_pid"
) &

# -u: awslambdaric's bootstrap unbuffers stdout for a handler, but this script bypasses it.
# Powertools prints each request's metrics (EMF); unbuffered, they reach CloudWatch as the
# request ends, not when a later line or the shutdown flushes a buffer.
ulimit -c 0 # SIGABRT above: the stacks in the log, no core file
exec python3 -u -X faulthandler -m llm_app.http.server @FUNCTION@.handler \
  --host 127.0.0.1 --port "$port"
