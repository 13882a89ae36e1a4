#!/usr/bin/env bash
# Count down slowly, printing as it goes; a helper process keeps it company, so cancelling
# the job shows that the whole process tree ends.
# Called as: countdown.sh [--seconds N]
set -euo pipefail
seconds=10
[ "${1:-}" = "--seconds" ] && seconds="$2"
sleep 3600 &   # the helper
for ((i = seconds; i > 0; i--)); do
  echo "$i"
  if [ -n "${JUPYTER_JOBSERVER_PROGRESS_FD:-}" ]; then
    awk -v done=$((seconds - i)) -v all="$seconds" -v left="$i" \
      'BEGIN { printf "%.3f %d left\n", done / all, left }' >&"$JUPYTER_JOBSERVER_PROGRESS_FD"
  fi
  sleep 1
done
echo "lift-off"
