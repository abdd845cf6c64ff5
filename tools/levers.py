"""A/B of the speedrun's levers: each lever against the baseline, several seeds, held-out bits per char.

Each arm trains the same shape for the number of steps that `budget` seconds buy it on this machine (its step time
timed first, one arm at a time, when the machine is quiet), so runs can share the cores without biasing one another.

    python tools/levers.py ../shared/data/tinyshakespeare.txt --seeds 0 1 2 --log levers.jsonl
"""
import argparse, json, os, statistics, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RUNG = dict(n_layer=3, n_head=4, n_embd=128, block_size=128, batch_size=16, lr=4e-3, weight_decay=0.5)  # LADDER[1]
BASELINE = {'mlp': 'gelu', 'cooldown': 0.0}  # before the levers: GPT-2's GELU and a cosine schedule
LEVERS = {name: {**BASELINE, **lever} for name, lever in {  # each lever alone, on the baseline
    'baseline': {}, 'muon': {'optimizer': 'muon'}, 'wsd': {'cooldown': 0.4}, 'relu2': {'mlp': 'relu2'},
    'combined': {'mlp': 'relu2', 'cooldown': 0.4}, 'qk_norm': {'qk_norm': True}, 'zero_init': {'zero_init': True},
    'logit_cap': {'logit_cap': 15.0}, 'untied': {'tied': False}, 'x0_mix': {'x0_mix': True}}.items()}
TIMED = {'optimizer', 'n_layer', 'n_head', 'n_embd', 'block_size', 'batch_size', 'vocab_size'}  # settings that change
# the work of a step; the others (qk_norm, relu2, a cap, ...) add little, and timing them apart would add the ~3% noise
# of a timing to their step counts

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('text_file')
    p.add_argument('--levers', nargs='+', default=list(LEVERS),
                   help='LEVERS names (each on the baseline), or name=json (settings on the defaults of TrainConfig)')
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--budget', type=float, default=300, help='seconds of training each arm is given')
    p.add_argument('--threads', type=int, default=1, help='threads of each run')
    p.add_argument('--jobs', type=int, help='runs at once (default: the cores / threads)')
    p.add_argument('--rung', type=json.loads, default=RUNG, help='the shape and recipe, as JSON')
    p.add_argument('--precision', default='fp32')
    p.add_argument('--steps', type=int, help='train every arm this many steps (no timing: a batch added to an earlier)')
    p.add_argument('--log', default='levers.jsonl')
    return p.parse_args(argv)

def arm(name: str) -> tuple[str, dict]:
    "A lever by name, or `name=json` for settings of one's own."
    if '=' in name: k, v = name.split('=', 1); return k, json.loads(v)
    return name, LEVERS[name]

def main(argv=None):
    a = parse_args(argv)
    os.environ['OMP_NUM_THREADS'] = str(a.threads)
    a.jobs = a.jobs or max(1, (os.cpu_count() or 1) // a.threads)
    from llmplay.bench import in_subprocess, quality_run, quiet_step_seconds, machine_facts
    arms = dict(arm(n) for n in a.levers)
    base = {**a.rung, 'precision': a.precision}
    if a.steps: step_s = {n: a.budget * 0.95 / a.steps for n in arms}
    else: step_s = {n: in_subprocess(quiet_step_seconds, candidate={**base, **s}, steps=10)
              for n, s in arms.items() if set(s) & TIMED}
    if not a.steps and any(not set(s) & TIMED for s in arms.values()):  # the same work as the baseline: the same steps
        base_s = in_subprocess(quiet_step_seconds, candidate=base, steps=10)
        step_s |= {n: base_s for n, s in arms.items() if not set(s) & TIMED}
    facts = in_subprocess(machine_facts)
    print(json.dumps(facts), flush=True)
    for n, t in step_s.items(): print(f'{n:12s} {t * 1e3:7.1f} ms/step -> {int(a.budget * 0.95 / t)} steps', flush=True)

    def run(job):
        n, seed = job
        steps = a.steps or int(a.budget * 0.95 / step_s[n])  # ~5% of a real run goes to evaluations
        cfg = {**base, **arms[n], 'seed': seed, 'time_budget': None, 'max_steps': steps,
               'warmup_steps': max(10, steps // 20), 'eval_interval': max(1, steps // 10)}
        row = in_subprocess(quality_run, text_file=a.text_file, preset='small', **cfg)
        row |= {'arm': n, 'seed': seed, 'step_ms': step_s[n] * 1e3, 'budget_s': a.budget, 'threads': a.threads,
                'cpu': facts['cpu']}
        with open(a.log, 'a') as f: f.write(json.dumps(row) + '\n')
        print(f"{n:12s} seed {seed}: {row['bits_per_char']:.4f} bits/char ({steps} steps)", flush=True)
        return row
    jobs = [(n, s) for s in a.seeds for n in arms]
    with ThreadPoolExecutor(a.jobs) as pool: rows = list(pool.map(run, jobs))
    print(f"\n{'arm':12s} {'mean':>7s} {'sd':>6s} {'vs base':>8s}  runs  (bits/char, held-out)")
    by = {n: [r['bits_per_char'] for r in rows if r['arm'] == n] for n in arms}
    ref = statistics.mean(by[next(iter(arms))])
    for n, v in by.items():
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        print(f'{n:12s} {statistics.mean(v):7.4f} {sd:6.4f} {statistics.mean(v) - ref:+8.4f}  {len(v)}')

if __name__ == '__main__': main()
