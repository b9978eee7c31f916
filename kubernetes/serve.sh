#!/bin/sh
# The image's command: serve the step named by LAB_STEP with one uvicorn worker on port 8000.
# Extra arguments go to uvicorn (the Tiltfile adds --reload for live updates; the image does not).
set -eu
if [ ! -f "${LAB_STEP:-}/main.py" ]; then
    echo "LAB_STEP='${LAB_STEP:-}' is not a step folder; valid:" [0-9][0-9]_* >&2
    exit 2
fi
# One worker per pod: the Dapr SDK caches actor state in the process, one process per sidecar.
# The access log only at LOG_LEVEL=DEBUG: a line per request costs CPU under load.
case "${LOG_LEVEL:-}" in
    [Dd][Ee][Bb][Uu][Gg]) access_log=--access-log ;;
    *) access_log=--no-access-log ;;
esac
exec uvicorn main:app --app-dir "$LAB_STEP" --host 0.0.0.0 --port 8000 --workers 1 "$access_log" "$@"
