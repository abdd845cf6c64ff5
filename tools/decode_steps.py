"""The rows of nbs/bench/decode_steps.jsonl, a decoding step of each shape in fp32 and bf16 (`bench_decoding`).

    OMP_NUM_THREADS=1 python tools/decode_steps.py nbs/bench/decode_steps.jsonl
"""
import json, sys
from llmplay.bench import bench_decoding, in_subprocess
with open(sys.argv[1], 'w') as f:
    for shape in ('3/4/128/128', '4/3/192/128', '4/4/256/128', '4/4/384/256', '6/6/384/256'):
        for precision in ('fp32', 'bf16'):
            r = in_subprocess(bench_decoding, shape=shape, precision=precision, compile=precision == 'fp32')
            f.write(json.dumps(r) + '\n'); print(r, flush=True)
