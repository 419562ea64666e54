# The source side of a WAN run, from sample.sh's samples: for TCP alone's connections and the
# source broker's (port 19192) toward the target namespace, over the middle half of their bytes:
# acknowledged rate; share of connection time idle (tcpi_busy_time), limited by the send
# buffer (tcpi_sndbuf_limited); connections with nothing unsent and flagged app_limited.
import re,sys
path=sys.argv[1]; verbose=len(sys.argv)>2
samples=[];cur=None;key=None
for line in open(path):
    if line.startswith('T '): cur={};samples.append((float(line.split()[1]),cur));continue
    if not line[0].isspace():
        p=line.split()
        if len(p)>=4: key=(p[2],p[3]); continue
    if key is None or cur is None: continue
    d={}
    for n in ('bytes_acked','busy','rwnd_limited','sndbuf_limited','notsent','unacked','cwnd'):
        m=re.search(r'\b'+n+r':(\d+)',line)
        if m: d[n]=int(m.group(1))
    d['al']='app_limited' in line
    cur[key]=d;key=None
first={};last={}
for t,c in samples:
    for k,d in c.items():
        first.setdefault(k,(t,d)); last[k]=(t,d)
def is_big(k): return last[k][1].get('bytes_acked',0)-first[k][1].get('bytes_acked',0)>20e6 and '10.77.2.1' in k[1]
groups={'tcp-alone':lambda k: not k[0].endswith(':19192'),'broker':lambda k:k[0].endswith(':19192')}
for g,f in groups.items():
    keys=[k for k in last if is_big(k) and f(k)]
    series=[]
    for (t0,c0),(t1,c1) in zip(samples,samples[1:]):
        ks=[k for k in keys if k in c0 and k in c1]
        if not ks: continue
        dt=t1-t0
        b=sum(c1[k].get('bytes_acked',0)-c0[k].get('bytes_acked',0) for k in ks)
        idle=sum(max(0,dt*1000-(c1[k].get('busy',0)-c0[k].get('busy',0))) for k in ks)/1000
        sb=sum(c1[k].get('sndbuf_limited',0)-c0[k].get('sndbuf_limited',0) for k in ks)/1000
        ns=sum(c1[k].get('notsent',0) for k in ks)
        nz=sum(1 for k in ks if c1[k].get('notsent',0)==0)
        al=sum(1 for k in ks if c1[k]['al'])
        series.append((t1,dt,len(ks),b,idle,sb,ns,nz,al))
    if not series: print(g,'none'); continue
    tot=sum(s[3] for s in series); acc=0; mid=[]
    for s in series:
        acc+=s[3]
        if tot*0.25<=acc<=tot*0.75: mid.append(s)
    T=sum(s[1] for s in mid); CT=sum(s[1]*s[2] for s in mid); n=len(mid)
    print(f'== {g}: {len(keys)} conns, {tot/2**20:.0f} MiB; middle half {T:.1f}s {sum(s[3] for s in mid)/T/2**20:.1f} MiB/s acked; idle {sum(s[4] for s in mid)/CT*100:.1f}%; sndbuf-limited {sum(s[5] for s in mid)/CT*100:.1f}%; nothing unsent on {sum(s[7] for s in mid)/n:.1f} conns; app_limited {sum(s[8] for s in mid)/n:.1f}; unsent {sum(s[6] for s in mid)/n/2**20:.1f} MiB')
    if verbose:
        for s in mid: print(f'  {s[0]-mid[0][0]:5.1f} {s[3]/s[1]/2**20:6.1f} MiB/s notsent {s[6]/2**20:5.1f} MiB zero on {s[7]:2d} app_limited {s[8]}')
    if verbose and g == 'broker':
        # Three of the broker's connections, sample by sample through the middle half.
        index = {t: i for i, (t, _) in enumerate(samples)}
        for k in sorted(keys)[:3]:
            print(' ', k[1])
            for s in mid:
                i = index[s[0]]
                c0, c1 = samples[i - 1][1], samples[i][1]
                if k not in c0 or k not in c1:
                    continue
                d = c1[k]
                rate = (d.get('bytes_acked', 0) - c0[k].get('bytes_acked', 0)) / s[1] / 2**20
                print(f'    {s[0]-mid[0][0]:5.1f} acked {rate:5.1f} MiB/s unsent {d.get("notsent",0)/2**20:5.2f} MiB unacknowledged {d.get("unacked",0)} segments {"app_limited" if d["al"] else ""}')
