"""The committed course reads as one story: the figures its prose quotes are the figures its outputs show.

A measured figure in a notebook's prose (a number with decimals followed by a unit: bits per byte or
character, tokens/s, ms, MB, GFLOP/s, a speed ratio like 1.5x) must appear, written the same way, in an output
of the same notebook. Figures of another run are quoted with their date ("measured 2026-11-24 ..."): a
cell that says so is not checked. No committed output holds a traceback or a warning stream.
"""
import json, re
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parent.parent/'nbs'
NOTEBOOKS = sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith('_'))
FIGURE = re.compile(r'(?<![\w.])(\d[\d,]*\.\d+)\s*(?=(?:bits?\b|tokens/s|ms\b|MB\b|GB\b|GFLOP/s|x\b|×))')
ELSEWHERE = re.compile(r'measured (?:on |here on )?20\d\d-\d\d-\d\d|\(\d{4}-\d\d-\d\d\)|issue #\d+', re.I)


def text_of(output: dict) -> str:
    if output.get('output_type') == 'stream': return ''.join(output.get('text', ''))
    data = output.get('data', {})
    return ''.join(''.join(data.get(k, '')) for k in ('text/plain', 'text/markdown', 'text/html'))


def cells(nb: Path) -> list[dict]: return json.loads(nb.read_text(encoding='utf-8'))['cells']


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: p.stem)
def test_figures_in_the_prose_are_in_the_outputs(nb):
    outputs = ' '.join(text_of(o) for c in cells(nb) for o in c.get('outputs', []))
    missing = []
    for c in cells(nb):
        if c['cell_type'] != 'markdown': continue
        text = ''.join(c['source'])
        if ELSEWHERE.search(text): continue  # figures of a run measured elsewhere, dated
        missing += [f for f in FIGURE.findall(text) if f not in outputs]
    assert not missing, f'{nb.name}: figures in the prose that no output of the notebook shows: {missing}'


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: p.stem)
def test_no_traceback_or_warning_in_the_outputs(nb):
    bad = [o for c in cells(nb) for o in c.get('outputs', [])
           if o.get('output_type') == 'error' or (o.get('name') == 'stderr' and re.search(r'(?i)warning|traceback', text_of(o)))]
    assert not bad, f'{nb.name}: {len(bad)} outputs with a traceback or a warning, e.g. {text_of(bad[0])[:300]!r}'


def test_the_figure_pattern():
    assert FIGURE.findall('it reached 2.095 bits per character, 1.5x faster, 8,210.5 tokens/s; temperature 0.8') == ['2.095', '1.5', '8,210.5']
    assert ELSEWHERE.search('Measured on 2026-11-24 on a 2-core CPU')
