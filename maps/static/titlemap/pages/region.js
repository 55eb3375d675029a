// pages/region.js — the city / province overview (/regions/{code}), filled from the JSON API
// (api/routers/regions.py): the counties on a map coloured by overall rate against target
// (GET …/counties.geojson for the outlines), the ranking table, sortable by a header click
// (GET …/overview), and one small burn-down chart per county (GET …/burndown). Leaflet draws
// the map with no tile layer (nothing leaves this app); a click on a county opens its own map
// (/?county=CODE). Every text that comes from data is written with textContent.
(function (window, document, L, T) {
  'use strict';

  var root = document.querySelector('.tm-region');
  if (!root || !window.fetch || !T || !T.util) return;
  var U = T.util, el = U.el, add = U.add, clear = U.clear, pct = U.pct, num = U.num,
    cnDate = U.cnDate, swatch = U.swatch;
  var classes = JSON.parse(root.getAttribute('data-classes') || '{}');
  var summary = root.querySelector('.tm-region-summary');

  function getJSON(url) {
    return window.fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (response) {
        if (!response.ok) {
          return response.json().then(function (body) { throw new Error(body.detail || response.status); },
            function () { throw new Error(String(response.status)); });
        }
        return response.json();
      });
  }

  function countyUrl(code) { return '/?county=' + encodeURIComponent(code); }

  // The county's class comes with its row (maps.styles.county_class decides it, once).
  function classOf(row) { return row.target_class || 'none'; }

  function colourOf(row) { return (classes[classOf(row)] || {}).colour || '#999999'; }

  function gap(row) {
    if (row.overall_rate === null || row.overall_rate === undefined ||
        row.target_rate === null || row.target_rate === undefined) return null;
    return (row.overall_rate - row.target_rate) * 100;
  }

  function gapText(value) {
    if (value === null) return '—';
    return (value >= 0 ? '+' : '−') + Math.abs(value).toFixed(1);
  }

  // -- the map ----------------------------------------------------------------------------------

  function drawMap(outlines, rows) {
    var box = root.querySelector('.tm-region-map');
    var byCode = {};
    rows.forEach(function (r) { byCode[r.code] = r; });
    var layer = L.geoJSON(outlines, {
      filter: function (feature) { return !!byCode[feature.properties && feature.properties.code]; },
      style: function (feature) {
        return { className: 'tm-region-county', fillColor: colourOf(byCode[feature.properties.code]),
          fillOpacity: 0.85, color: '#ffffff', weight: 1.5 };
      },
      onEachFeature: function (feature, path) {
        var row = byCode[feature.properties.code];
        var label = el('div', 'tm-region-label');
        add(label, el('div', 'tm-region-label-name', row.name), el('div', null, pct(row.overall_rate)));
        path.bindTooltip(label, { permanent: true, direction: 'center', className: 'tm-region-tip' });
        path.on('click', function () { window.location.assign(countyUrl(row.code)); });
        path.on('add', function () {
          var node = path.getElement && path.getElement();
          if (node) node.setAttribute('data-code', row.code);
        });
      }
    });
    var bounds = layer.getBounds();
    if (bounds.isValid()) { // as tall as the counties need at the box's width, within reason
      var wide = (bounds.getEast() - bounds.getWest()) * Math.cos(bounds.getCenter().lat * Math.PI / 180);
      var tall = bounds.getNorth() - bounds.getSouth();
      box.style.height = Math.round(Math.max(280, Math.min(620, box.clientWidth * tall / Math.max(wide, 1e-6) + 40))) + 'px';
    }
    var map = L.map(box, { renderer: L.svg(), attributionControl: false, zoomSnap: 0.25 });
    layer.addTo(map);
    if (bounds.isValid()) map.fitBounds(bounds, { padding: [8, 8] });
    else map.setView([36, 104], 6);
    drawLegend();
  }

  function drawLegend() {
    var legend = clear(root.querySelector('.tm-region-legend'));
    Object.keys(classes).forEach(function (key) {
      add(legend, add(el('span', 'tm-region-legend-item'), swatch(classes[key].colour), classes[key].label));
    });
    add(legend, el('span', 'tm-muted', '点击县区打开其地图 / click a county for its map'));
  }

  // -- the ranking ------------------------------------------------------------------------------

  var sortKey = 'rank', sortUp = true;

  function valueOf(row, key) { return key === 'gap' ? gap(row) : row[key]; }

  function compare(a, b) {
    var x = valueOf(a, sortKey), y = valueOf(b, sortKey);
    var none = (x === null || x === undefined) - (y === null || y === undefined);
    if (none) return none; // no figure: last, whichever way
    if (x === y || none === 0 && (x === null || x === undefined)) return a.rank - b.rank;
    var order = typeof x === 'number' ? x - y : String(x).localeCompare(String(y), 'zh-CN');
    return sortUp ? order : -order;
  }

  function cells(row) {
    return [row.rank === null || row.rank === undefined ? '' : String(row.rank), null, pct(row.overall_rate),
      pct(row.target_rate), gapText(gap(row)), num(row.units_task), num(row.units_transferred),
      num(row.resolved_this_month), num(row.overdue_tasks), num(row.stalled), cnDate(row.target_deadline)];
  }

  function tableRow(row, total) {
    var tr = el('tr', total ? 'tm-region-total' : 'tm-region-row');
    cells(row).forEach(function (text, i) {
      var td = el(i === 1 && !total ? 'th' : 'td', i === 1 || i === 10 ? null : 'tm-num');
      if (i === 1 && total) td.textContent = '合计';
      else if (i === 1) {
        td.setAttribute('scope', 'row');
        var link = el('a', null, row.name);
        link.href = countyUrl(row.code);
        add(td, swatch(colourOf(row), 'tm-swatch tm-region-swatch'), link);
      } else td.textContent = text;
      if (i === 4 && !total && gap(row) !== null) td.className += gap(row) >= 0 ? ' tm-ok-text' : ' tm-short-text';
      tr.appendChild(td);
    });
    if (!total) tr.setAttribute('data-code', row.code);
    return tr;
  }

  function drawTable(overview) {
    var table = root.querySelector('.tm-region-table'), body = clear(table.tBodies[0]);
    overview.counties.slice().sort(compare).forEach(function (row) { body.appendChild(tableRow(row)); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      var key = th.getAttribute('data-key');
      th.setAttribute('aria-sort', key === sortKey ? (sortUp ? 'ascending' : 'descending') : 'none');
    });
  }

  function setUpTable(overview) {
    var table = root.querySelector('.tm-region-table');
    add(clear(table.tFoot), tableRow(overview.totals, true));
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.tabIndex = 0;
      function sort() {
        var key = th.getAttribute('data-key');
        if (key === sortKey) sortUp = !sortUp;
        else { sortKey = key; sortUp = key === 'rank' || key === 'name' || key === 'target_deadline'; }
        drawTable(overview);
      }
      th.addEventListener('click', sort);
      th.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sort(); } });
    });
    drawTable(overview);
    if (overview.withheld) {
      var note = root.querySelector('.tm-region-withheld');
      note.textContent = '另有 ' + overview.withheld + ' 个县区未公开，未列入 / ' + overview.withheld +
        ' counties not open to you are left out';
      note.hidden = false;
    }
  }

  function drawSummary(overview) {
    var t = overview.totals;
    summary.className = 'tm-region-summary';
    summary.textContent = overview.counties.length + ' 个县区，已达目标 ' + num(t.counties_meeting_target) +
      ' 个 · 任务 ' + num(t.units_task) + ' 套，已转移 ' + num(t.units_transferred) + ' 套 · 总体登记率 ' +
      pct(t.overall_rate) + ' · 本月化解 ' + num(t.resolved_this_month) + ' 套 · 逾期任务 ' + num(t.overdue_tasks);
  }

  // -- the burn-downs ---------------------------------------------------------------------------

  function svg(tag, attrs) {
    var node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function svgText(x, y, text, anchor) {
    var node = svg('text', { x: x, y: y, 'text-anchor': anchor || 'start', 'font-size': 10, fill: '#555' });
    node.textContent = text;
    return node;
  }

  function month(iso) {
    var d = String(iso).split('-');
    return Number(d[0]) + '年' + Number(d[1]) + '月';
  }

  function burndownChart(county, colour) {
    var weeks = county.series || [], W = 240, H = 120, m = { l: 40, r: 8, t: 8, b: 20 };
    var chart = svg('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img',
      'class': 'tm-region-chart' });
    chart.setAttribute('aria-label', county.name + ' 每周未化解套数');
    if (!weeks.length) { chart.appendChild(svgText(W / 2, H / 2, '无台账记录', 'middle')); return chart; }
    var t0 = Date.parse(weeks[0].week_end), tLast = Date.parse(weeks[weeks.length - 1].week_end);
    var deadline = county.target_deadline ? Date.parse(county.target_deadline) : null;
    var t1 = Math.max(tLast, deadline || tLast);
    var top = Math.max.apply(null, weeks.map(function (w) { return w.open_units; }).concat([1]));
    function x(t) { return m.l + ((t - t0) / Math.max(1, t1 - t0)) * (W - m.l - m.r); }
    function y(v) { return H - m.b - (v / top) * (H - m.t - m.b); }
    [0, top].forEach(function (v) {
      chart.appendChild(svg('line', { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v), stroke: '#ddd' }));
      chart.appendChild(svgText(m.l - 4, y(v) + 4, num(v), 'end'));
    });
    // The pace the deadline needs: from the first week the ledger held its most open units (the
    // survey done; a ledger entered over months starts near 0) straight to 0 at the deadline.
    var start = weeks.filter(function (w) { return w.open_units === top; })[0] || weeks[0];
    if (deadline) {
      chart.appendChild(svg('line', { 'class': 'tm-region-pace', x1: x(Date.parse(start.week_end)),
        y1: y(start.open_units), x2: x(deadline), y2: y(0), stroke: '#000', 'stroke-dasharray': '4 3' }));
      chart.appendChild(svg('line', { x1: x(deadline), x2: x(deadline), y1: m.t, y2: H - m.b, stroke: '#888',
        'stroke-dasharray': '2 2' }));
    }
    var points = weeks.map(function (w) {
      return x(Date.parse(w.week_end)).toFixed(1) + ',' + y(w.open_units).toFixed(1);
    });
    chart.appendChild(svg('polyline', { 'class': 'tm-region-open', points: points.join(' '), fill: 'none',
      stroke: colour, 'stroke-width': 2 }));
    chart.appendChild(svgText(m.l, H - 6, month(weeks[0].week_end)));
    chart.appendChild(svgText(W - m.r, H - 6, deadline ? '时限 ' + month(county.target_deadline)
      : month(weeks[weeks.length - 1].week_end), 'end'));
    return chart;
  }

  function drawBurndowns(burndown, rows) {
    var box = clear(root.querySelector('.tm-region-burndowns'));
    var byCode = {}, rank = {};
    rows.forEach(function (r) { byCode[r.code] = r; rank[r.code] = r.rank; });
    burndown.counties.slice().sort(function (a, b) { return (rank[a.code] || 1e9) - (rank[b.code] || 1e9); })
      .forEach(function (county) {
        var row = byCode[county.code] || { overall_rate: null };
        var weeks = county.series || [], last = weeks.length ? weeks[weeks.length - 1].open_units : null;
        var card = el('figure', 'tm-region-burndown');
        card.setAttribute('data-code', county.code);
        var title = el('figcaption');
        var link = el('a', null, county.name);
        link.href = countyUrl(county.code);
        add(title, link, el('span', 'tm-muted', ' 未化解 ' + num(last) + ' 套 · 时限 ' +
          cnDate(county.target_deadline)));
        add(box, add(card, title, burndownChart(county, colourOf(row))));
      });
  }

  // -- start --------------------------------------------------------------------------------------

  var overviewReady = getJSON(root.getAttribute('data-overview'));
  overviewReady.then(function (overview) {
    drawSummary(overview);
    setUpTable(overview);
    getJSON(root.getAttribute('data-outlines')).then(function (outlines) {
      drawMap(outlines, overview.counties);
    }, function () { drawLegend(); });
    getJSON(root.getAttribute('data-burndown')).then(function (burndown) {
      drawBurndowns(burndown, overview.counties);
    }, function () {});
  }, function (error) {
    summary.className = 'tm-region-summary tm-flash tm-error';
    summary.textContent = '读取失败 / could not load: ' + error.message;
  });
})(window, window.document, window.L, window.titlemap);
