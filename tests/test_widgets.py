"""The ipywidgets sampler (llmplay/widgets.py), driven from code as a notebook user would with the mouse."""
import html

import pytest

from llmplay import pipeline
from llmplay.widgets import Sampler, bars_html, distribution
from llmplay.workspace import Workspace


@pytest.fixture(scope='module')
def model_tok(trained):
    t = pipeline.load(trained)
    return t.model, t.tokenizer


def test_the_chart_follows_the_knobs(model_tok):
    model, tok = model_tok
    s = Sampler(model, tok, 'The')
    shown = s.chart.value
    assert shown.count('data-piece=') == s.n and f'of {tok.vocab_size:,} tokens' in shown
    s.temperature.value = 1.7
    assert s.chart.value != shown and s.rows[0][2] < s.rows[0][1]  # hotter: the favourite loses
    s.temperature.value = 0.3
    assert s.rows[0][2] > s.rows[0][1]
    s.top_p.value, s.top_k.value = 1.0, 4
    assert s.kept == 4 and sum(q > 0 for *_, q in s.rows) <= 4
    before = s.rows
    s.prompt.value = 'A list is'
    assert s.rows != before and s.kept == 4  # a new prompt: a new distribution, the same knobs
    s.strategy.value = 'greedy'
    assert s.kept == 1 and all(w.disabled for w in (s.temperature, s.top_k, s.top_p, s.min_p))


def test_generate_fills_the_output(model_tok):
    model, tok = model_tok
    s = Sampler(model, tok, 'The')
    s.max_new_tokens.value, s.seed.value = 20, 5
    s.button.click()
    first = s.text
    assert first and html.escape(first) in s.output.value and not s.button.disabled
    s.button.click()
    assert s.text == first  # the same seed: the same text
    s.strategy.value = 'greedy'
    s.button.click()
    assert s.text and html.escape(s.text) in s.output.value


def test_bars_html_marks_what_cannot_be_drawn(model_tok):
    model, tok = model_tok
    rows, kept = distribution(model, tok, 'The', n=6, top_k=2)
    chart = bars_html(rows, kept, tok.vocab_size, 'title')
    assert kept == 2 and chart.count('data-p="0.00000"') == 4 and 'title' in chart
