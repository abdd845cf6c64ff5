"""The fitted recipe on a machine that is busy only while the recipe times its shapes.

Other programs spin on every core during the start-up probe and stop the moment it is done: the probe sees a slow
machine, the run then trains at the quiet speed, and the check after `FIT_CHECK` of the budget must fit the shape a
quiet probe chooses (within one rung of the ladder).
"""
import multiprocessing as mp
import os

import pytest

from llmplay import pipeline
from llmplay.config import make_config
from llmplay.hardware import Hardware
from llmplay.recipe import LADDER, fit_recipe
from llmplay.tokenizer import Tokenizer
from llmplay.training import step_seconds, train
from llmplay.workspace import Workspace


def spin():
    while True: pass


class Stop(Exception): pass


def test_busy_probe_is_refitted(tmp_path):
    ws = Workspace(tmp_path)
    pipeline.collect(ws, source='sample', progress=False)
    pipeline.tokenize(ws, vocab_size=1024, progress=False)
    vocab, hw = Tokenizer.load(ws).vocab_size, Hardware.pick('cpu', 'auto')
    quiet, why = fit_recipe(make_config('auto'), vocab, hw, step_seconds, on_event=lambda e: None)

    spinners = [mp.Process(target=spin, daemon=True) for _ in range(2 * (os.cpu_count() or 1))]
    for p in spinners: p.start()
    said = []

    def on_event(e):
        text = getattr(e, 'text', '') or ''
        said.append(text)
        if text.startswith('fitted recipe'):
            for p in spinners: p.kill()  # the machine is quiet from the first step on
        if text.startswith('the start-up probe timed') or (getattr(e, 'kind', '') == 'progress'
                                                           and (e.data.get('elapsed') or 0) > 30):
            raise Stop  # the check has been made (or the run went past it without one)
    try:
        with pytest.raises(Stop): train(ws, make_config('auto'), progress=False, on_event=on_event)
    finally:
        for p in spinners: p.kill()
    fitted = next(t for t in said if t.startswith('fitted recipe'))
    check = [t for t in said if t.startswith('the start-up probe timed')]
    assert check, f'no check of the probe against the run: {said}'
    final = next((t for t in said if t.startswith('re-fitted recipe')), fitted)
    rung = next(i for i, r in enumerate(LADDER) if '{} layers, {} heads, width {},'.format(*r[:3]) in final)
    assert abs(rung - why['rung']) <= 1, (why['shape'], fitted, check, final)
    print(f"quiet probe: {why['shape']}; busy probe: {fitted}; {check[0]}; final: {final}")

