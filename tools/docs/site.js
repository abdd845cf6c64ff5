/* llmplay course site (tools/build_docs.py): copy buttons on code, and search over search-index.js.
   Plain JavaScript, no libraries, nothing from the network: the site works offline, also from file://. */
(function () {
  'use strict';

  /* ---- copy buttons ------------------------------------------------------------------------------ */

  // the code of input cells and of the prose (both live in .jp-InputArea); outputs get no button
  function addCopyButtons() {
    document.querySelectorAll('.jp-InputArea pre').forEach(function (pre) {
      var box = pre.parentElement.classList.contains('highlight') ? pre.parentElement : pre;  // the bordered box
      if (box.parentElement.classList.contains('code-block')) return;
      var wrap = document.createElement('div');
      wrap.className = 'code-block';
      box.parentNode.insertBefore(wrap, box);
      wrap.appendChild(box);
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'copy-button';
      button.textContent = 'Copy';
      button.title = 'Copy the code';
      button.setAttribute('aria-label', 'Copy the code');
      wrap.appendChild(button);
    });
  }

  function copyWithTextarea(text) {  // for browsers without navigator.clipboard (e.g. pages opened over plain http)
    var ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.style.position = 'fixed'; ta.style.top = '0'; ta.style.left = '-9999px'; ta.style.opacity = '0';
    document.body.appendChild(ta);
    ta.select();
    var ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    document.body.removeChild(ta);
    return ok ? Promise.resolve() : Promise.reject(new Error('copy failed'));
  }

  function copyText(text) {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      return navigator.clipboard.writeText(text).catch(function () { return copyWithTextarea(text); });
    }
    return copyWithTextarea(text);
  }

  function codeText(pre) { return pre.textContent.replace(/\n$/, ''); }  // highlighting ends code with a newline

  document.addEventListener('click', function (e) {
    var button = e.target.closest && e.target.closest('.copy-button');
    if (!button) return;
    var pre = button.parentElement.querySelector('pre');
    copyText(codeText(pre)).then(function () { flash(button, 'Copied', 'copied'); },
                                 function () { flash(button, 'Failed', 'failed'); });
  });

  function flash(button, label, cls) {
    clearTimeout(button._timer);
    button.textContent = label;
    button.classList.add(cls);
    button._timer = setTimeout(function () {
      button.textContent = 'Copy';
      button.classList.remove(cls);
    }, 1600);
  }

  /* ---- search -------------------------------------------------------------------------------------- */

  var MAX_SHOWN = 30;
  var input, panel, sections = null, waiting = null, shown = [], selected = 0;

  // the index is a script (fetch() cannot read file://), loaded when the reader first turns to the search box;
  // `then` runs once it is there (at once if it is)
  function loadIndex(then) {
    if (sections) { then(); return; }
    if (window.llmplaySearchIndex) { prepare(window.llmplaySearchIndex); then(); return; }
    if (waiting) { waiting.push(then); return; }
    waiting = [then];
    var s = document.createElement('script');
    s.src = 'search-index.js';
    s.onload = function () {
      var todo = waiting;
      waiting = null;
      prepare(window.llmplaySearchIndex);
      todo.forEach(function (f) { f(); });
    };
    s.onerror = function () {
      waiting = null;
      s.remove();
      showMessage('The search index (search-index.js) could not be loaded.');
    };
    document.head.appendChild(s);
  }

  function prepare(index) {
    sections = index.sections.map(function (s, i) {
      var page = index.pages[s.page];
      return {
        i: i, level: s.level, heading: s.heading, text: s.text, page: page.title,
        href: page.file + (s.anchor ? '#' + s.anchor : ''),
        h: s.heading.toLowerCase(), t: page.title.toLowerCase(), x: s.text.toLowerCase()
      };
    });
  }

  function isWordChar(c) { return /[a-z0-9_]/i.test(c); }

  // where `term` occurs in `s` at the start of a word, or -1
  function wordStart(s, term) {
    for (var at = s.indexOf(term); at >= 0; at = s.indexOf(term, at + 1)) {
      if (at === 0 || !isWordChar(s[at - 1]) || !isWordChar(term[0])) return at;
    }
    return -1;
  }

  function count(s, term, most) {
    var n = 0;
    for (var at = s.indexOf(term); at >= 0 && n < most; at = s.indexOf(term, at + term.length)) n++;
    return n;
  }

  /* Every word of the query must occur in the section (its heading, text or page title) and at least one
     in its heading or text. A word in the heading counts most (the whole heading > a heading word's start >
     anywhere in it), then the page's title, then the text (more for whole words and for several times). */
  function score(s, terms, phrase) {
    var total = 0, own = false;
    for (var k = 0; k < terms.length; k++) {
      var term = terms[k], sc = 0;
      if (s.h === term) sc = 100;
      else if (wordStart(s.h, term) >= 0) sc = 60;
      else if (s.h.indexOf(term) >= 0) sc = 40;
      var n = count(s.x, term, 10);
      if (n) sc += 4 + n + (wordStart(s.x, term) >= 0 ? 4 : 0);  // at most 18: below any heading hit
      if (sc) own = true;
      if (s.t.indexOf(term) >= 0) sc += 10;
      if (!sc) return 0;
      total += sc;
    }
    if (!own) return 0;
    if (terms.length > 1) {
      if (s.h.indexOf(phrase) >= 0) total += 50;
      else if (s.x.indexOf(phrase) >= 0) total += 20;
    }
    return total;
  }

  function search(query) {
    var q = query.toLowerCase().trim();
    var terms = q.split(/\s+/).filter(Boolean);
    if (!terms.length) return [];
    var hits = [];
    sections.forEach(function (s) {
      var sc = score(s, terms, terms.join(' '));
      if (sc) hits.push({ s: s, score: sc });
    });
    // ties: a section's own page before the text that mentions it, then the order of the course
    hits.sort(function (a, b) { return b.score - a.score || a.s.level - b.s.level || a.s.i - b.s.i; });
    return hits.map(function (h) { return h.s; });
  }

  // `text` as nodes with each occurrence of a term in <mark>
  function highlighted(text, terms) {
    var lower = text.toLowerCase(), ranges = [];
    terms.forEach(function (t) {
      for (var at = lower.indexOf(t); at >= 0; at = lower.indexOf(t, at + t.length)) ranges.push([at, at + t.length]);
    });
    ranges.sort(function (a, b) { return a[0] - b[0]; });
    var frag = document.createDocumentFragment(), pos = 0;
    ranges.forEach(function (r) {
      if (r[1] <= pos) return;
      var start = Math.max(r[0], pos);
      if (start > pos) frag.appendChild(document.createTextNode(text.slice(pos, start)));
      var m = document.createElement('mark');
      m.textContent = text.slice(start, r[1]);
      frag.appendChild(m);
      pos = r[1];
    });
    if (pos < text.length) frag.appendChild(document.createTextNode(text.slice(pos)));
    return frag;
  }

  // about 180 characters of the section's text around the first match
  function snippet(s, terms) {
    var first = -1;
    terms.forEach(function (t) {
      var at = s.x.indexOf(t);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    });
    var text = s.text, start = 0;
    if (first > 60) {
      start = text.lastIndexOf(' ', first - 50);
      start = start < 0 ? first - 50 : start + 1;
    }
    var end = Math.min(text.length, start + 180);
    if (end < text.length) { var sp = text.lastIndexOf(' ', end); if (sp > first) end = sp; }
    return (start > 0 ? '…' : '') + text.slice(start, end) + (end < text.length ? '…' : '');
  }

  function element(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function render() {
    var query = input.value.trim();
    if (!query) { close(); return; }
    if (!sections) { loadIndex(render); return; }
    var terms = query.toLowerCase().split(/\s+/).filter(Boolean);
    var hits = search(query);
    shown = hits.slice(0, MAX_SHOWN);
    selected = 0;
    panel.textContent = '';
    if (!hits.length) {
      panel.appendChild(element('p', 'search-empty', 'No results for “' + query + '”'));
    } else {
      panel.appendChild(element('p', 'search-count', hits.length === 1 ? '1 result' :
        (hits.length > MAX_SHOWN ? 'Top ' + MAX_SHOWN + ' of ' : '') + hits.length + ' results'));
      var list = element('ul', 'search-list');
      list.setAttribute('role', 'listbox');
      shown.forEach(function (s, k) {
        var li = element('li'), a = element('a', 'search-hit');
        a.href = s.href;
        a.id = 'search-hit-' + k;
        a.setAttribute('role', 'option');
        var head = element('span', 'search-heading');
        head.appendChild(highlighted(s.heading, terms));
        a.appendChild(head);
        if (s.level > 1) a.appendChild(element('span', 'search-page', s.page));
        if (s.text) {
          var snip = element('span', 'search-snippet');
          snip.appendChild(highlighted(snippet(s, terms), terms));
          a.appendChild(snip);
        }
        a.addEventListener('mousemove', function () { select(k, false); });
        li.appendChild(a);
        list.appendChild(li);
      });
      panel.appendChild(list);
      select(0, false);
    }
    open();
  }

  function showMessage(text) {
    panel.textContent = '';
    panel.appendChild(element('p', 'search-empty', text));
    open();
  }

  function select(k, scroll) {
    if (!shown.length) return;
    selected = (k + shown.length) % shown.length;
    panel.querySelectorAll('.search-hit').forEach(function (a, j) {
      a.classList.toggle('selected', j === selected);
      a.setAttribute('aria-selected', j === selected ? 'true' : 'false');
    });
    input.setAttribute('aria-activedescendant', 'search-hit-' + selected);
    if (scroll) document.getElementById('search-hit-' + selected).scrollIntoView({ block: 'nearest' });
  }

  function narrow() { return window.matchMedia('(max-width: 900px)').matches; }

  // the results float over the page: beside the sidebar, or under the box when the sidebar is a drawer
  function place() {
    var r = input.getBoundingClientRect(), top;
    if (narrow()) {
      top = r.bottom + 6;
      panel.style.left = '0.5rem'; panel.style.right = '0.5rem';
    } else {
      var side = document.querySelector('.sidebar').getBoundingClientRect();
      top = Math.max(8, r.top - 8);
      panel.style.left = (side.right + 12) + 'px'; panel.style.right = 'auto';
    }
    panel.style.top = top + 'px';
    panel.style.maxHeight = Math.max(160, window.innerHeight - top - 12) + 'px';
  }

  function open() { place(); panel.hidden = false; input.setAttribute('aria-expanded', 'true'); }

  function close() {
    if (!panel) return;
    panel.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
  }

  function go(s) {
    close();
    var toggle = document.getElementById('nav-toggle');
    if (toggle) toggle.checked = false;  // on a phone, the drawer closes
    window.location.href = s.href;
  }

  function focusSearch() {
    var toggle = document.getElementById('nav-toggle');
    if (narrow() && toggle) toggle.checked = true;  // the box is in the drawer
    input.focus();
    input.select();
    loadIndex(function () { if (input.value.trim()) render(); });
  }

  function typing(e) {
    var t = e.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  function setUpSearch() {
    input = document.getElementById('search-input');
    panel = document.getElementById('search-results');
    if (!input || !panel) return;
    input.addEventListener('focus', function () { loadIndex(function () { if (input.value.trim()) render(); }); });
    input.addEventListener('input', render);
    input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter') {
        e.preventDefault();
        if (!sections) { loadIndex(function () { render(); if (shown.length) go(shown[selected]); }); return; }
        if (panel.hidden) render();
        if (shown.length) go(shown[selected]);
      } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        if (panel.hidden) return;
        e.preventDefault();
        select(selected + (e.key === 'ArrowDown' ? 1 : -1), true);
      } else if (e.key === 'Escape') {
        e.preventDefault();
        if (!panel.hidden) close();
        else { input.value = ''; input.blur(); }
      }
    });
    document.addEventListener('keydown', function (e) {
      if (e.key === '/' && !typing(e) && !e.ctrlKey && !e.metaKey && !e.altKey) {
        e.preventDefault();
        focusSearch();
      } else if (e.key === 'Escape' && !panel.hidden) {
        close();
        input.focus();
      }
    });
    document.addEventListener('mousedown', function (e) {
      if (!panel.hidden && !panel.contains(e.target) && e.target !== input) close();
    });
    panel.addEventListener('click', function (e) {  // a hit on this same page: only the hash changes
      var a = e.target.closest('a.search-hit');
      if (a) { close(); var t = document.getElementById('nav-toggle'); if (t) t.checked = false; }
    });
    window.addEventListener('resize', function () { if (!panel.hidden) place(); });
  }

  function start() { addCopyButtons(); setUpSearch(); }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
