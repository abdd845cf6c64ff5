#!/usr/bin/env python3
"""Check, in one short run, everything llmplay does on a CUDA GPU, and how fast: `python tools/gpu_check.py`.

    python tools/gpu_check.py                         # CUDA if there is one: the gpu preset, 300 steps; else the CPU, small, 30 steps
    python tools/gpu_check.py --steps 1000            # longer, for a steadier figure
    python tools/gpu_check.py --set micro_batch_size=4   # a GPU with less memory: the same batch, in parts
    python tools/gpu_check.py --preset gpu --steps 3 --device cpu   # the gpu preset's code path, slowly, on a CPU

It trains with llmplay's own `train` (the preset, bf16 autocast where the device computes it, pinned host memory for
the batches on CUDA) in a scratch workspace made from the bundled sample corpus (or a copy of `--root`'s tokens),
then samples with the KV cache and without, and prints: training tokens/s and the model FLOPs utilisation (MFU)
against the GPU's spec-sheet peak and against a matrix product timed here; whether torch.compile pays for itself
and after how many steps; generation tokens/s. For several GPUs, the same training runs under
`torchrun --nproc-per-node N -m llmplay train` (see nbs/12_parallel.ipynb).
"""
from __future__ import annotations
import argparse, json, statistics, sys, tempfile, time
from pathlib import Path

import torch

from llmplay import pipeline
from llmplay.config import parse_set
from llmplay.hardware import Hardware, for_inference
from llmplay.model import GPTModel
from llmplay.parallel import copy_tokens
from llmplay.config import make_config
from llmplay.training import batches, gpt_config, make_optimizer, train, training_step
from llmplay.checkpoints import load_model, read_train_log
from llmplay.recipe import flops_per_token
from llmplay.tokenizer import Tokenizer, load_tokens
from llmplay.workspace import Workspace

# dense bf16 tensor-core peaks from the vendors' data sheets, in TFLOP/s (fp16 for GPUs without bf16); first match wins
PEAKS = [('H100 PCIe', 756), ('H100', 989), ('H200', 989), ('B200', 2250), ('A100', 312), ('L40S', 362), ('L4', 121),
         ('A10', 125), ('RTX 4090', 165), ('V100', 125), ('T4', 65)]


def spec_peak(name: str) -> tuple[str, float] | None:
    "The data-sheet peak (TFLOP/s) of the GPU called `name`, or None if this table does not know it."
    return next(((k, v) for k, v in PEAKS if k in name), None)


def matmul_peak(hw: Hardware, n: int, repeats: int = 10) -> float:
    "TFLOP/s of an n x n matrix product in the run's precision, on its device: the practical peak."
    dtype = torch.bfloat16 if hw.precision == 'bf16' else torch.float32
    a, b = (torch.randn(n, n, device=hw.device, dtype=dtype) for _ in range(2))
    for _ in range(2): a @ b
    hw.sync()
    t0 = time.perf_counter()
    for _ in range(repeats): a @ b
    hw.sync()
    return 2 * n ** 3 * repeats / (time.perf_counter() - t0) / 1e12


def step_times(cfg, vocab: int, hw: Hardware, compile: bool, steps: int = 5) -> tuple[float, float]:
    "Seconds of the first training step (compiling, if asked) and of each later one, at `cfg`'s shape, on random tokens."
    torch.manual_seed(0)
    model = GPTModel(gpt_config(cfg, vocab)).to(hw.device)
    opt, run = make_optimizer(model, cfg), torch.compile(model) if compile else model
    x = torch.randint(vocab, (cfg.batch_size, cfg.block_size), device=hw.device)
    t0 = time.perf_counter()
    training_step(run, opt, x, x, hw, cfg.grad_clip, cfg.micro_batch_size)
    hw.sync()
    first, t0 = time.perf_counter() - t0, time.perf_counter()
    for _ in range(steps): training_step(run, opt, x, x, hw, cfg.grad_clip, cfg.micro_batch_size)
    hw.sync()
    return first, (time.perf_counter() - t0) / steps


def generation(model, hw: Hardware, n: int) -> dict:
    "Greedy tokens/s of `n` new tokens with the KV cache and without (on the inference copy: bf16 where the rule says so)."
    m = for_inference(model, hw.precision)
    prompt, out, rate = torch.zeros(1, 1, dtype=torch.long, device=hw.device), {}, {}
    for cache in (True, False):
        m.generate(prompt, 8, temperature=0, use_cache=cache)  # warm-up
        hw.sync()
        t0 = time.perf_counter()
        out[cache] = m.generate(prompt, n, temperature=0, use_cache=cache)
        hw.sync()
        rate[cache] = n / (time.perf_counter() - t0)
    same = (out[True] == out[False])[0]
    return {'cached': rate[True], 'uncached': rate[False], 'same': bool(same.all()),
            'first_difference': None if same.all() else int((~same).nonzero()[0])}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='auto', help='auto (default: cuda if there is one), cuda, mps or cpu')
    p.add_argument('--precision', default='auto', help='auto (bf16 where the device computes it fast), fp32 or bf16')
    p.add_argument('--preset', help='training preset (default: gpu on CUDA, small elsewhere)')
    p.add_argument('--steps', type=int, help='training steps (default: 300 on CUDA, 30 elsewhere)')
    p.add_argument('--set', nargs='+', default=[], metavar='KEY=VALUE', help='training settings, e.g. micro_batch_size=4')
    p.add_argument('--compile', choices=['auto', 'on', 'off'], default='auto',
                   help='time torch.compile against eager steps (auto: on CUDA only); on: also train compiled')
    p.add_argument('--gen-tokens', type=int, default=256, help='new tokens to generate (default: 256)')
    p.add_argument('--root', help="a tokenized workspace whose tokens to train on (copied); default: the bundled sample corpus")
    p.add_argument('--json', action='store_true', help='print the figures as one JSON object at the end')
    return p.parse_args(argv)


def main(argv=None) -> dict:
    a = parse_args(argv)
    hw = Hardware.pick(a.device, a.precision)
    cuda = hw.device == 'cuda'
    preset, steps = a.preset or ('gpu' if cuda else 'small'), a.steps or (300 if cuda else 30)
    overrides = parse_set(a.set)
    name = torch.cuda.get_device_name() if cuda else hw.describe()
    print(f"llmplay GPU check on {name}: torch {torch.__version__}"
          + (f", CUDA {torch.version.cuda}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GB" if cuda else '')
          + f"; {hw.precision}", flush=True)
    report = {'device': name, 'precision': hw.precision, 'preset': preset, 'steps': steps}
    with tempfile.TemporaryDirectory(prefix='llmplay-gpu-check-') as tmp:
        ws = Workspace(Path(tmp))
        if a.root: copy_tokens(Workspace(a.root), tmp)
        else: pipeline.run(ws, until=2, source='sample', progress=False)
        vocab = Tokenizer.load(ws).vocab_size
        cfg = make_config(preset, **{'device': a.device, 'precision': a.precision, 'time_budget': None, 'max_steps': steps,
                                     'eval_interval': steps, 'ckpt_interval': steps, 'log_interval': max(1, min(50, steps // 6)),
                                     'compile': a.compile == 'on', **overrides})
        n_params = GPTModel(gpt_config(cfg, vocab)).num_params()
        print(f"  preset {preset}: {cfg.n_layer} layers, width {cfg.n_embd}, context {cfg.block_size}, batch {cfg.batch_size}"
              f"{f' in parts of {cfg.micro_batch_size}' if cfg.micro_batch_size else ''}, vocabulary {vocab} "
              f"({n_params / 1e6:.1f}M parameters)", flush=True)

        # the code paths a GPU run takes
        x, _ = next(batches(load_tokens(ws), cfg.block_size, 2, torch.Generator().manual_seed(0), pin_memory=cuda))
        report.update(pinned=bool(x.is_pinned()) if cuda else None, autocast=hw.precision == 'bf16')
        print(f"  batches in pinned host memory: {'yes' if report['pinned'] else 'no (only on CUDA)' if not cuda else 'NO'}; "
              f"bf16 autocast: {'yes' if report['autocast'] else 'no (fp32)'}", flush=True)

        # training, with llmplay's own loop
        if cuda: torch.cuda.reset_peak_memory_stats()
        peak = matmul_peak(hw, 8192 if cuda else 2048)
        t0 = time.perf_counter()
        summary = train(ws, cfg, progress=False)
        wall = time.perf_counter() - t0
        rows = [r for r in read_train_log(ws) if r.get('tokens_per_s')]
        rate = statistics.median(r['tokens_per_s'] for r in (rows[1:] or rows))  # the first row holds the warm-up
        achieved = flops_per_token(cfg, vocab) * rate / 1e12
        spec = spec_peak(name) if cuda else None
        losses = [r['loss'] for r in rows if r.get('loss') is not None]
        report.update(tokens_per_s=rate, tflops=achieved, matmul_peak_tflops=peak, mfu_of_matmul=achieved / peak,
                      spec_peak_tflops=spec and spec[1], mfu=spec and achieved / spec[1], train_seconds=wall,
                      first_loss=losses[0], last_loss=losses[-1], val_bpb=summary['val_bpb'],
                      peak_memory_gb=torch.cuda.max_memory_allocated() / 2**30 if cuda else None)
        mfu = (f"MFU {report['mfu']:.0%} of the {spec[0]}'s data-sheet peak ({spec[1]:g} TFLOP/s), " if spec else
               'MFU (no data-sheet peak known for this device) ')
        print(f"  train {steps} steps in {wall:.0f} s: {rate:,.0f} tokens/s = {achieved:.3g} TFLOP/s; {mfu}"
              f"{report['mfu_of_matmul']:.0%} of a {hw.precision} matrix product timed here ({peak:.3g} TFLOP/s)"
              + (f"; peak memory {report['peak_memory_gb']:.1f} GB" if cuda else '')
              + f"; loss {losses[0]:.2f} -> {losses[-1]:.2f}", flush=True)

        # torch.compile: does it pay?
        if a.compile == 'on' or a.compile == 'auto' and cuda:
            eager_first, eager = step_times(cfg, vocab, hw, compile=False)
            compile_first, compiled = step_times(cfg, vocab, hw, compile=True)
            gain = eager - compiled
            after = (compile_first - eager_first) / gain if gain > 0 else None
            report.update(eager_step_s=eager, compiled_step_s=compiled, compile_s=compile_first - eager_first, compile_pays_after=after)
            verdict = (f"pays after {after:,.0f} steps: for longer runs add --set compile=true" if after is not None
                       else 'does not pay here: leave it off')
            print(f"  torch.compile: compiled in {compile_first - eager_first:.0f} s; a step {eager * 1e3:.1f} ms eager, "
                  f"{compiled * 1e3:.1f} ms compiled ({eager / compiled:.2f}x); {verdict}", flush=True)
        else: print('  torch.compile: not timed (--compile on times it; on CPUs it rarely pays, see the README)', flush=True)

        # generation with the KV cache
        model, _ = load_model(ws, hw.device)
        g = generation(model, hw, min(a.gen_tokens, cfg.block_size - 1))
        report.update(gen_tokens=min(a.gen_tokens, cfg.block_size - 1), gen_cached=g['cached'], gen_uncached=g['uncached'],
                      gen_same=g['same'])
        same = 'the same greedy tokens' if g['same'] else f"greedy tokens differ from token {g['first_difference']} (bf16 rounding)"
        print(f"  generate {report['gen_tokens']} tokens: {g['cached']:,.0f} tokens/s with the KV cache, "
              f"{g['uncached']:,.0f} without; {same}", flush=True)
    if a.json: print(json.dumps(report))
    return report


if __name__ == '__main__':
    main()
