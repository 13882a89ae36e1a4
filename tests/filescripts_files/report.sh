#!/usr/bin/env bash
# Write a report and a data file into the job's folder.
set -eu
echo "report of a file script" > report.txt
mkdir -p out
printf '1,2,3\n' > out/numbers.csv
echo "wrote 2 files"
