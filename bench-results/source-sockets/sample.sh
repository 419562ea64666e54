#!/bin/bash
# Samples the TCP sockets of the benchmark's source namespace (bench-a) every 0.5 s for as
# long as it exists: start it before `testbed/bench ... --wan ...`, it waits for the link.
# Usage: sample.sh OUT.txt ; then: python3 sockets.py OUT.txt [-v]
out=${1:?usage: sample.sh OUT.txt}
: > "$out"
until ip netns list | grep -q '^bench-a'; do sleep 0.5; done
while ip netns list | grep -q '^bench-a'; do
  echo "T $(date +%s.%N)" >> "$out"
  ip netns exec bench-a ss -tinH state established 2>/dev/null >> "$out"
  sleep 0.5
done
