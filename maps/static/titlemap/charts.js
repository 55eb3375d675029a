// charts.js — the county's registration figures and the weekly progress chart (SVG).
(function (window, document, L, T) {
  'use strict';

  var App = T.App, U = T.util;
  var el = U.el, add = U.add, clear = U.clear, pct = U.pct, num = U.num, cnDate = U.cnDate,
    query = U.query, swatch = U.swatch;

  function svg(tag, attrs) {
    var node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  // -- figures and the progress chart ---------------------------------------------------------------

  App.prototype.loadFigures = function () {
    var app = this, api = this.config.api;
    var seq = (this.figuresSeq = (this.figuresSeq || 0) + 1);
    this.getJSON(api.stats + query({ county: this.county, as_of: this.asOf })).then(function (stats) {
      if (seq !== app.figuresSeq) return;
      app.renderFigures(stats);
    }, function () {});
    if (!this.burndown) {
      this.getJSON(api.burndown + query({ county: this.county })).then(function (b) {
        app.burndown = b.weeks || [];
        app.renderChart();
      }, function () {});
    } else {
      this.renderChart();
    }
  };

  App.prototype.renderFigures = function (stats) {
    var box = clear(this.figuresBox), r = stats.rows && stats.rows[0], target = stats.target_rate;
    this.target = target;
    if (!r) { add(box, el('div', 'tm-muted', '台账为空')); return; }
    add(box, el('div', 'tm-muted', (stats.as_of ? '截至 ' + cnDate(stats.as_of) : '截至今日') + '，' +
      num(r.compounds) + ' 个台账小区，任务 ' + num(r.units_task) + ' 套'));
    [['首次登记化解率', r.first_rate, false], ['转移登记化解率', r.transfer_rate, false],
      ['总体登记率', r.overall_rate, true]].forEach(function (f) {
      var bar = el('div', 'tm-bar'), fillBar = el('div', 'tm-bar-fill');
      fillBar.style.width = Math.max(0, Math.min(100, (f[1] || 0) * 100)) + '%';
      add(bar, fillBar);
      if (f[2]) {
        var mark = el('div', 'tm-bar-target');
        mark.style.left = target * 100 + '%';
        mark.title = '目标 ' + pct(target);
        add(bar, mark);
        fillBar.classList.add(r.meets_target ? 'tm-ok' : 'tm-short');
      }
      add(box, add(el('div', 'tm-figure'), el('span', 'tm-figure-label', f[0]),
        el('span', 'tm-figure-value', pct(f[1])), bar));
    });
    var deadline = stats.target_deadline ? '，期限 ' + cnDate(stats.target_deadline) : '';
    add(box, el('div', r.meets_target ? 'tm-ok-text' : 'tm-short-text',
      '年度目标：总体登记率 ≥ ' + pct(target) + deadline + (r.meets_target ? '（已达标）' : '（未达标）')));
  };

  App.prototype.renderChart = function () {
    var box = clear(this.chartBox), weeks = this.burndown || [];
    if (weeks.length < 2) return;
    var W = 290, H = 150, m = { l: 34, r: 8, t: 10, b: 22 };
    var chart = svg('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
    chart.setAttribute('aria-label', '首次登记化解率和转移登记化解率每周变化');
    var t0 = Date.parse(weeks[0].week_end), t1 = Date.parse(weeks[weeks.length - 1].week_end);
    function x(t) { return m.l + ((t - t0) / Math.max(1, t1 - t0)) * (W - m.l - m.r); }
    function y(v) { return H - m.b - (v || 0) * (H - m.t - m.b); }
    [0, 0.5, 1].forEach(function (v) {
      chart.appendChild(svg('line', { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v), stroke: '#ddd' }));
      var label = svg('text', { x: m.l - 4, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 10, fill: '#555' });
      label.textContent = v * 100 + '%';
      chart.appendChild(label);
    });
    if (this.target) {
      chart.appendChild(svg('line', { x1: m.l, x2: W - m.r, y1: y(this.target), y2: y(this.target),
        stroke: '#000', 'stroke-dasharray': '4 3' }));
    }
    var series = [['first_rate', this.statusColour('first_registered'), '首次登记化解率'],
      ['transfer_rate', this.statusColour('closed'), '转移登记化解率']];
    series.forEach(function (s) {
      var points = weeks.map(function (w) { return x(Date.parse(w.week_end)).toFixed(1) + ',' + y(w[s[0]]).toFixed(1); });
      chart.appendChild(svg('polyline', { points: points.join(' '), fill: 'none', stroke: s[1], 'stroke-width': 2 }));
    });
    var asOf = this.asOf ? Date.parse(this.asOf) : t1;
    if (asOf >= t0 && asOf <= t1 + 7 * 864e5) {
      var ax = Math.min(x(asOf), W - m.r);
      chart.appendChild(svg('line', { x1: ax, x2: ax, y1: m.t, y2: H - m.b, stroke: '#888', 'stroke-dasharray': '2 2' }));
    }
    [[weeks[0].week_end, 'start'], [weeks[weeks.length - 1].week_end, 'end']].forEach(function (p) {
      var label = svg('text', { x: p[1] === 'start' ? m.l : W - m.r, y: H - 6, 'text-anchor': p[1], 'font-size': 10, fill: '#555' });
      var d = p[0].split('-');
      label.textContent = Number(d[0]) + '年' + Number(d[1]) + '月';
      chart.appendChild(label);
    });
    var key = el('div', 'tm-chart-key');
    series.forEach(function (s) { add(key, add(el('span'), swatch(s[1], 'tm-swatch tm-swatch-line'), s[2])); });
    add(key, add(el('span'), el('span', 'tm-swatch tm-swatch-dash'), '目标（总体登记率）'));
    add(box, el('div', 'tm-label', '化解进度（每周）'), chart, key);
  };
})(window, window.document, window.L, window.titlemap);
