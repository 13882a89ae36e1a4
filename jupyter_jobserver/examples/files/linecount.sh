#!/usr/bin/env bash
# Count the lines and words of a datafile, optionally only the lines matching a pattern.
# Called as: linecount.sh DATAFILE [--pattern TEXT] [--top N]
set -euo pipefail
file="$1"; shift
pattern=""
top=5
while [ $# -gt 0 ]; do
  case "$1" in
    --pattern) pattern="$2"; shift 2 ;;
    --top) top="$2"; shift 2 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
progress() { [ -n "${JUPYTER_JOBSERVER_PROGRESS_FD:-}" ] && echo "$1" >&"$JUPYTER_JOBSERVER_PROGRESS_FD" || true; }

progress "0.1 reading $(basename "$file")"
if [ -n "$pattern" ]; then
  lines=$(grep -c -- "$pattern" "$file" || true)
else
  lines=$(wc -l < "$file")
fi
words=$(wc -w < "$file")
echo "lines: $lines"
echo "words: $words"
progress "0.8 most common first fields"
echo "most common first fields:"
# awk reads to the end where head would stop early: under pipefail, the sort it left
# behind would die of SIGPIPE (exit 141) and fail the job
cut -d, -f1 "$file" | sort | uniq -c | sort -rn | awk -v top="$top" 'NR <= top'
printf '{"lines": %d, "words": %d}\n' "$lines" "$words" > "$JUPYTER_JOBSERVER_RESULT"
progress "1 done"
