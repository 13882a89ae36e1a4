#!/usr/bin/env bash
# Write to stdout and stderr, report progress, optionally wait at a gate, exit with a code.
set -u
code=0; gate=""
while [ $# -gt 0 ]; do
  case "$1" in
    --code) code="$2"; shift 2 ;;
    --gate) gate="$2"; shift 2 ;;
    *) echo "unexpected argument: $1" >&2; exit 64 ;;
  esac
done
echo "to stdout"
echo "to stderr" >&2
echo "0.5 halfway" >&"$JUPYTER_JOBSERVER_PROGRESS_FD"
if [ -n "$gate" ]; then read -r _ < "$gate"; fi
echo "after the gate"
[ "$code" -ne 0 ] && echo "failing with $code" >&2
exit "$code"
