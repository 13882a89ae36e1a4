"""Histogram of one column of a CSV datafile, written by a Python file script.

Called as: histogram.py DATAFILE --column NAME [--bins N]
The result (the counts and bin edges) goes to $JUPYTER_JOBSERVER_RESULT.
"""

import argparse
import csv
import json
import os

from jupyter_jobserver import context

parser = argparse.ArgumentParser()
parser.add_argument("datafile")
parser.add_argument("--column", required=True)
parser.add_argument("--bins", type=int, default=10)
args = parser.parse_args()

with open(args.datafile, newline="") as f:
    rows = list(csv.DictReader(f))
if not rows or args.column not in rows[0]:
    raise SystemExit(f"no column {args.column!r} in {os.path.basename(args.datafile)}")
values = [float(row[args.column]) for row in rows if row[args.column] not in ("", None)]
low, high = min(values), max(values)
width = (high - low) / args.bins or 1.0
counts = [0] * args.bins
for i, value in enumerate(values):
    counts[min(int((value - low) / width), args.bins - 1)] += 1
    if i % 1000 == 0:
        context.progress(i / len(values), f"{i} of {len(values)} values")
edges = [low + i * width for i in range(args.bins + 1)]
for count, start in zip(counts, edges[:-1], strict=True):
    print(f"{start:10.2f} {'#' * round(40 * count / max(counts))}")
context.progress(1.0, "done")
with open(os.environ["JUPYTER_JOBSERVER_RESULT"], "w") as f:
    json.dump({"counts": counts, "edges": edges, "n": len(values)}, f)
