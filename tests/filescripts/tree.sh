#!/usr/bin/env bash
# Start children three ways, print their pids, then wait forever.
sleep 300 &
a=$!
setsid sleep 300 &
b=$!
( setsid sleep 300 & echo $! > "$PWD/daemon.pid" ) # the parent subshell exits: a daemon
c=$(cat "$PWD/daemon.pid")
echo "$$ $a $b $c"
wait
