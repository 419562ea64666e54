# How long strait's fetches took, by kind (ahead, at the position, gap, second sending), and how
# many fetches were on their lane when each went out; from the `fetch` / `fetched` debug lines.
# Usage: python3 gaps.py target/bench/<run>/w1r1strait<id>.log
import sys,re,datetime,collections,statistics as st
f=sys.argv[1]
# The driver's fetch lines come from strait::engine::flow::fetching since it was split into
# modules (2026-11-24), from strait::engine::flow before: both read alike.
def lines(): return (l.replace('strait::engine::flow::fetching:', 'strait::engine::flow:') for l in open(f))
def ts(s): return datetime.datetime.fromisoformat(s.rstrip('Z')).timestamp()
pending={}; lat=collections.defaultdict(list); lanebusy=collections.Counter(); out=collections.Counter()
for line in lines():
    if ' DEBUG strait::engine::flow: fetch flow' in line:
        t=ts(line.split()[0]); p=int(re.search(r'partition=(\d+)',line)[1]); o=int(re.search(r' offset=(\d+)',line)[1]); l=int(re.search(r'lane=(\d+)',line)[1])
        kind='gap' if 'gap=true' in line else 'hedge' if 'hedge=true' in line else 'ahead' if 'ahead=true' in line else 'position'
        mb=int(re.search(r'max_bytes=(\d+)',line)[1])
        pending.setdefault((p,o),[]).append((t,kind,out[l],mb,l)); out[l]+=1
    elif ' DEBUG strait::engine::flow: fetched flow' in line:
        t=ts(line.split()[0]); p=int(re.search(r'partition=(\d+)',line)[1]); o=int(re.search(r' offset=(\d+)',line)[1])
        lst=pending.get((p,o))
        if lst:
            t0,kind,ahead_of_it,mb,l=lst.pop(0); out[l]-=1
            lat[kind].append((t-t0,ahead_of_it,mb))
for k,v in lat.items():
    d=sorted(x[0] for x in v)
    print(f'{k:9s} n={len(v):4d} took median {st.median(d):.2f}s p90 {d[int(len(d)*0.9)]:.2f}s max {d[-1]:.2f}s; sent behind others on its lane: {collections.Counter(x[1] for x in v)}; median max_bytes {st.median(x[2] for x in v)/2**20:.2f} MiB')
# Seconds each partition's position waited on a gap fetch (one sent at the position).
pending={}; waits=collections.defaultdict(float); n=0
for line in lines():
    if ' DEBUG strait::engine::flow: fetch flow' in line and 'gap=true' in line and 'ahead=false' in line:
        p=int(re.search(r'partition=(\d+)',line)[1]); o=int(re.search(r' offset=(\d+)',line)[1])
        pending[(p,o)]=ts(line.split()[0])
    elif ' DEBUG strait::engine::flow: fetched flow' in line:
        p=int(re.search(r'partition=(\d+)',line)[1]); o=int(re.search(r' offset=(\d+)',line)[1])
        if (p,o) in pending:
            waits[p]+=ts(line.split()[0])-pending.pop((p,o)); n+=1
print(n,'gap fetches at the position; seconds each partition waited on them:',{p:round(w,1) for p,w in sorted(waits.items())})
