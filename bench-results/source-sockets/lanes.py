# Share of lane-time with n fetches on their way, middle half of the copy by time, from
# strait's `fetch` / `fetched` debug lines (STRAIT_LOG=info,strait::engine::flow=debug).
# Usage: python3 lanes.py target/bench/<run>/w1r1strait<id>.log   (the mirror's log, not <id>l.log)
import sys,re,datetime,collections
f=sys.argv[1]
# The driver's fetch lines come from strait::engine::flow::fetching since it was split into
# modules (2026-11-24), from strait::engine::flow before: both read alike.
def lines(): return (l.replace('strait::engine::flow::fetching:', 'strait::engine::flow:') for l in open(f))
def ts(s): return datetime.datetime.fromisoformat(s.rstrip('Z')).timestamp()
pending={}; events=[]
for line in lines():
    if ' DEBUG strait::engine::flow: fetch flow' in line:
        t=ts(line.split()[0]); p=int(re.search(r'partition=(\d+)',line)[1]); o=int(re.search(r' offset=(\d+)',line)[1]); l=int(re.search(r'lane=(\d+)',line)[1])
        pending.setdefault((p,o),[]).append(l); events.append((t,l,1))
    elif ' DEBUG strait::engine::flow: fetched flow' in line:
        t=ts(line.split()[0]); p=int(re.search(r'partition=(\d+)',line)[1]); o=int(re.search(r' offset=(\d+)',line)[1])
        lst=pending.get((p,o))
        if lst: events.append((t,lst.pop(0),-1))
events.sort()
t0=events[0][0]; t1=events[-1][0]; lo=t0+(t1-t0)*0.25; hi=t0+(t1-t0)*0.75
state=collections.Counter(); last=t0; hist=collections.Counter(); lanes=set(l for _,l,_ in events)
for t,l,d in events:
    a=max(last,lo); b=min(t,hi)
    if b>a:
        for ln in lanes: hist[state[ln]]+=b-a
    last=t; state[l]+=d
tot=sum(hist.values())
print(len(lanes),'lanes; share of lane-time with n fetches out:',{k:round(v/tot*100,1) for k,v in sorted(hist.items())})
