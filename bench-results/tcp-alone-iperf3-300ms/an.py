import json,sys
name=sys.argv[1]
import os
here=os.path.dirname(os.path.abspath(__file__))
d=json.load(open(f'{here}/{name}.server.json'))
ivs=d['intervals']; total=sum(iv['sum']['bytes'] for iv in ivs)
cum=0; pts=[(0,0)]
for iv in ivs:
    cum+=iv['sum']['bytes']; pts.append((iv['sum']['end'],cum))
def t_at(f):
    for (t0,c0),(t1,c1) in zip(pts,pts[1:]):
        if c1>=f*total: return t0+(t1-t0)*(f*total-c0)/max(1,c1-c0)
M=2**20
T=pts[-1][0]
print(f"{name}: {total/M:.0f} MiB in {T:.2f} s = {total/M/T:.1f} MiB/s whole; first 10% {t_at(.1):.2f} s, 10-90% {t_at(.9)-t_at(.1):.2f} s, last 10% {T-t_at(.9):.2f} s; middle half {0.5*total/M/(t_at(.75)-t_at(.25)):.1f} MiB/s")
c=json.load(open(f'{here}/{name}.client.json'))
print(" retransmits", c['end']['sum_sent'].get('retransmits'), "sender cpu", c['end'].get('cpu_utilization_percent',{}).get('host_total'))
