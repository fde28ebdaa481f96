/**
 * The script the page runs: it reads the page model from the JSON script element and builds the DOM
 * with createElement/textContent only (never innerHTML), so a string from the record is always text.
 * Plain ES2020 in a string, because it runs in the browser, not in Node; the model it reads is typed
 * in page-model.ts. When it is done it sets `data-rendered="true"` on <html> (tests wait for that).
 */
export const PAGE_SCRIPT = String.raw`
(function () {
  'use strict';
  var root = document.getElementById('report');
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function fail(message) {
    var banner = el('div', 'error', 'The report could not be drawn: ' + message);
    document.body.insertBefore(banner, document.body.firstChild);
  }

  function header(model) {
    var head = el('header', 'page-header');
    head.appendChild(el('div', 'eyebrow', 'Kiln compression report'));
    head.appendChild(el('h1', null, model.title));
    var facts = el('dl', 'facts');
    model.facts.forEach(function (f) {
      var item = el('div', 'fact');
      item.appendChild(el('dt', null, f.label));
      item.appendChild(el('dd', null, f.value));
      facts.appendChild(item);
    });
    head.appendChild(facts);
    var tiles = el('div', 'tiles');
    model.tiles.forEach(function (t) {
      var tile = el('div', 'tile tone-' + (t.tone || 'neutral'));
      tile.appendChild(el('div', 'tile-label', t.label));
      tile.appendChild(el('div', 'tile-value', t.value));
      if (t.detail) tile.appendChild(el('div', 'tile-detail', t.detail));
      tiles.appendChild(tile);
    });
    head.appendChild(tiles);
    return head;
  }

  function chartBody(card) {
    var box = el('div', 'chart-box');
    var canvas = el('canvas');
    canvas.id = 'chart-' + card.id;
    canvas.setAttribute('data-card', card.id);
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', card.title);
    box.appendChild(canvas);
    return { node: box, draw: function () { new Chart(canvas, card.chart); } };
  }

  function tableBody(card) {
    var wrap = el('div', 'table-wrap');
    var table = el('table', 'data');
    table.setAttribute('data-card', card.id);
    var headRow = el('tr');
    card.columns.forEach(function (c) { headRow.appendChild(el('th', null, c)); });
    table.appendChild(el('thead')).appendChild(headRow);
    var body = table.appendChild(el('tbody'));
    card.rows.forEach(function (r) {
      var row = el('tr');
      r.forEach(function (v) { row.appendChild(el('td', null, v)); });
      body.appendChild(row);
    });
    wrap.appendChild(table);
    return { node: wrap };
  }

  // Shade: share of the true class's row. Right answers blue; errors red, scaled up 4x since
  // they are rare and a 2% confusion should still show.
  function heatmapBody(card) {
    var wrap = el('div', 'table-wrap');
    var table = el('table', 'heatmap');
    table.setAttribute('data-card', card.id);
    var headRow = el('tr');
    headRow.appendChild(el('th', 'corner', 'true \\ predicted'));
    card.labels.forEach(function (l) { headRow.appendChild(el('th', null, l)); });
    table.appendChild(el('thead')).appendChild(headRow);
    var body = table.appendChild(el('tbody'));
    card.counts.forEach(function (counts, i) {
      var row = el('tr');
      row.appendChild(el('th', null, card.labels[i]));
      var total = counts.reduce(function (a, b) { return a + b; }, 0) || 1;
      counts.forEach(function (n, j) {
        var share = n / total;
        var alpha = i === j ? share : Math.min(1, share * 4);
        var cell = el('td', null, n);
        cell.style.backgroundColor = (i === j ? 'rgba(37, 99, 235, ' : 'rgba(220, 38, 38, ') + alpha.toFixed(3) + ')';
        if (alpha > 0.55) cell.style.color = '#fff';
        cell.title = 'true ' + card.labels[i] + ', predicted ' + card.labels[j] + ': ' + n + ' (' + (share * 100).toFixed(1) + '% of the row)';
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
    wrap.appendChild(table);
    return { node: wrap };
  }

  function card(c, draws) {
    var node = el('section', 'card' + (c.wide ? ' wide' : ''));
    node.setAttribute('data-card-kind', c.kind);
    node.appendChild(el('h3', null, c.title));
    if (c.note) node.appendChild(el('p', 'note', c.note));
    var body = c.kind === 'chart' ? chartBody(c) : c.kind === 'table' ? tableBody(c) : heatmapBody(c);
    node.appendChild(body.node);
    if (body.draw) draws.push(body.draw);
    return node;
  }

  try {
    var model = JSON.parse(document.getElementById('report-data').textContent);
    document.title = model.title + ' · Kiln report';
    root.appendChild(header(model));
    var draws = [];
    model.sections.forEach(function (s) {
      var section = el('div', 'section');
      section.appendChild(el('h2', null, s.title));
      var grid = el('div', 'grid');
      s.cards.forEach(function (c) { grid.appendChild(card(c, draws)); });
      section.appendChild(grid);
      root.appendChild(section);
    });
    if (typeof Chart === 'undefined') throw new Error('Chart.js did not load');
    Chart.defaults.animation = false;
    Chart.defaults.maintainAspectRatio = false;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = '#374151';
    draws.forEach(function (draw) { draw(); });
    document.documentElement.setAttribute('data-rendered', 'true');
  } catch (err) {
    fail(err && err.message ? err.message : String(err));
    throw err;
  }
})();
`;
