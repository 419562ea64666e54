#!/usr/bin/env bash
# How the iperf3 rows of the README's "TCP alone through the same link" were measured.
# usage: run.sh NAME STREAMS MIB [CPU_LOAD_PERCENT]
# Brings up testbed/wan --name tcpc (300 ms, 1 Gbit/s) when it is not up; needs root,
# iperf3 and, for a load, stress-ng (apt-get install -y iperf3 stress-ng). Writes
# NAME.server.json and NAME.client.json here; an.py NAME summarizes them.
# Take the link down after: testbed/wan down --name tcpc
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
W="$here/../../testbed/wan"
name=$1 P=$2 MIB=$3 load=${4:-0}
out="$here/$name"
"$W" status --name tcpc >/dev/null 2>&1 || "$W" up --name tcpc --rtt 300ms --rate 1gbit
rm -f "$out".*
"$W" exec --name tcpc b iperf3 -s -B 10.77.2.1 -1 -D -J --logfile "$out.server.json" -i 0.25
sleep 1
if [ "$load" != 0 ]; then stress-ng --cpu 2 --cpu-load "$load" --timeout 120 >/dev/null 2>&1 & L=$!; sleep 2; fi
"$W" exec --name tcpc a iperf3 -c 10.77.2.1 -P "$P" -n "${MIB}M" -J >"$out.client.json"
[ "$load" != 0 ] && kill "$L"
sleep 2
"$W" status --name tcpc 2>&1 | grep "a->b"
