// filters.js — the panel: search, filters, date, downloads, notices; the summary counts.
(function (window, document, L, T) {
  'use strict';

  var App = T.App, U = T.util;
  var el = U.el, add = U.add, clear = U.clear, num = U.num, cnDate = U.cnDate, query = U.query,
    swatch = U.swatch, codesOf = U.codesOf;

  // -- the panel ---------------------------------------------------------------------------------

  App.prototype.buildPanel = function () {
    var app = this, panel = this.panel;
    this.titleBox = el('div', 'tm-title', '登记难化解一张图');
    this.summaryBox = el('div', 'tm-summary tm-muted');
    add(panel, this.titleBox, this.summaryBox);

    // search
    var search = el('input', 'tm-search');
    search.type = 'search';
    search.placeholder = '搜索小区名称、编号或宗地代码';
    search.setAttribute('aria-label', '搜索小区或宗地 / search compounds or parcels');
    this.results = el('ul', 'tm-results');
    var timer = null;
    search.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () { app.search(search.value); }, 200);
    });
    search.addEventListener('keydown', function (e) {
      if (e.key === 'Enter') {
        clearTimeout(timer);
        app.search(search.value, true);
      }
    });
    this.searchInput = search;
    add(panel, search, this.results);

    // filters
    var filters = el('details', 'tm-section');
    filters.open = true;
    add(filters, el('summary', null, '筛选'));
    this.statusBoxes = el('div', 'tm-statuses');
    Object.keys(this.styles.status).forEach(function (s) {
      var label = el('label', 'tm-check'), box = el('input');
      box.type = 'checkbox';
      box.value = s;
      box.name = 'status';
      box.addEventListener('change', function () {
        app.filters.status = Array.prototype.slice.call(app.statusBoxes.querySelectorAll('input:checked'))
          .map(function (b) { return b.value; });
        app.apply();
      });
      add(label, box, swatch(app.statusColour(s)), app.statusLabel(s));
      add(app.statusBoxes, label);
    });
    add(filters, el('div', 'tm-label', '化解状态（不选即全部）'), this.statusBoxes);
    this.selects = {};
    [['blocker', '卡点类别'], ['lead_department', '牵头单位'], ['township', '乡镇（街道）'],
      ['planned_area', '规划片区']].forEach(function (pair) {
      var select = el('select', 'tm-select');
      select.name = pair[0];
      select.setAttribute('aria-label', pair[1]);
      var all = el('option', null, '全部');
      all.value = '';
      add(select, all);
      select.addEventListener('change', function () {
        app.filters[pair[0]] = select.value;
        app.apply();
      });
      app.selects[pair[0]] = select;
      add(filters, add(el('label', 'tm-field'), el('span', 'tm-label', pair[1]), select));
    });
    var overdue = el('input');
    overdue.type = 'checkbox';
    overdue.name = 'overdue';
    overdue.addEventListener('change', function () {
      app.filters.overdue = overdue.checked;
      app.apply();
    });
    this.overdueBox = overdue;
    add(filters, add(el('label', 'tm-check'), overdue, '只看逾期未办结'));
    var reset = el('button', 'tm-button', '清除筛选');
    reset.type = 'button';
    reset.addEventListener('click', function () { app.resetFilters(); });
    add(filters, reset);
    this.addOverdueTasksFilter(filters, reset);
    add(panel, filters);

    // date
    var dates = el('details', 'tm-section');
    dates.open = true;
    add(dates, el('summary', null, '查看日期（按台账历史回看）'));
    var date = el('input', 'tm-date');
    date.type = 'date';
    date.name = 'as_of';
    date.setAttribute('aria-label', '查看日期');
    date.addEventListener('change', function () { app.setDate(date.value); });
    var today = el('button', 'tm-button', '今天');
    today.type = 'button';
    today.addEventListener('click', function () { app.setDate(null); });
    this.dateInput = date;
    this.dateNote = el('div', 'tm-muted');
    add(dates, add(el('div', 'tm-row'), date, today), this.dateNote);
    add(panel, dates);

    // figures
    var figures = el('details', 'tm-section');
    figures.open = true;
    add(figures, el('summary', null, '全县登记率'));
    this.figuresBox = el('div', 'tm-figures');
    this.chartBox = el('div', 'tm-chart');
    add(figures, this.figuresBox, this.chartBox);
    add(panel, figures);

    // downloads
    var downloads = el('details', 'tm-section');
    add(downloads, el('summary', null, '下载'));
    this.overlapLink = el('a', 'tm-link', '小区与规划片区重叠面积表（xlsx，按当前筛选）');
    this.ledgerLink = el('a', 'tm-link', '化解台账（xlsx）');
    add(downloads, this.overlapLink, this.ledgerLink);
    add(panel, downloads);
    this.updateLinks();

    this.noticeBox = el('div', 'tm-notices tm-muted');
    this.messageBox = el('div', 'tm-message');
    this.messageBox.hidden = true;
    add(panel, this.noticeBox, this.messageBox);
    this.notice('', null);
  };

  App.prototype.fillOptions = function (options) {
    var app = this;
    this.titleBox.textContent = options.county.name + ' 登记难化解一张图';
    document.title = options.county.name + ' 登记难化解一张图';
    function opt(select, value, text) {
      var o = el('option', null, text);
      o.value = value;
      select.appendChild(o);
    }
    options.blockers.forEach(function (b) { opt(app.selects.blocker, b.code, b.label); });
    options.lead_departments.forEach(function (d) { opt(app.selects.lead_department, d, d); });
    options.townships.forEach(function (t) { opt(app.selects.township, t.code, t.name); });
    var groups = {};
    options.planned_areas.forEach(function (p) {
      if (!groups[p.kind]) {
        groups[p.kind] = el('optgroup');
        groups[p.kind].label = p.kind_label || p.kind;
        app.selects.planned_area.appendChild(groups[p.kind]);
      }
      opt(groups[p.kind], p.code, p.name);
    });
    this.dateInput.min = options.history_start || '';
    this.dateInput.max = options.today;
    this.dateInput.value = options.today;
    this.dateNote.textContent = '台账历史自 ' + cnDate(options.history_start) + ' 起';
    this.fillCounties(options.counties || []);
  };

  // The county chooser, under the title where the database holds more than one county:
  // choosing one opens its map (filters and date belong to a county).
  App.prototype.fillCounties = function (counties) {
    var app = this;
    if (counties.length < 2 || this.countySelect) return;
    var select = el('select', 'tm-select');
    select.name = 'county';
    select.setAttribute('aria-label', '县 / county');
    counties.forEach(function (c) {
      var o = el('option', null, c.name + '（' + c.code + '）');
      o.value = c.code;
      o.selected = c.code === app.county;
      select.appendChild(o);
    });
    select.addEventListener('change', function () {
      window.location.assign(window.location.pathname + query({ county: select.value }));
    });
    this.countySelect = select;
    var box = add(el('label', 'tm-field tm-county'), el('span', 'tm-label', '县 / county'), select);
    this.panel.insertBefore(box, this.summaryBox);
  };

  // 逾期任务: only the compounds with overdue tasks (tasks.js), offered once the person is
  // known to be signed in (tasks are not the public map's).
  App.prototype.addOverdueTasksFilter = function (filters, before) {
    var app = this, box = el('input');
    box.type = 'checkbox';
    box.name = 'overdue_tasks';
    box.addEventListener('change', function () { app.filterOverdueTasks(box.checked); });
    this.overdueTasksBox = box;
    this.whoami().then(function (me) {
      if (me.signed_in) filters.insertBefore(add(el('label', 'tm-check'), box, '只看有逾期任务的小区'), before);
    });
  };

  App.prototype.resetFilters = function () {
    this.filters = { status: [], blocker: '', lead_department: '', township: '', planned_area: '', overdue: false };
    Array.prototype.forEach.call(this.statusBoxes.querySelectorAll('input'), function (b) { b.checked = false; });
    Object.keys(this.selects).forEach(function (k) { this.selects[k].value = ''; }, this);
    this.overdueBox.checked = false;
    this.overdueTasksBox.checked = false;
    this.overdueTasksWanted = false;
    this.apply();
  };

  App.prototype.setDate = function (value) {
    var today = this.options ? this.options.today : null;
    this.asOf = value && value !== today ? value : null;
    this.dateInput.value = this.asOf || today || '';
    this.apply();
    this.loadFigures();
    if (this.cardCode) this.openCard(this.cardCode, false, this.cardClicked);
  };

  // Filters or date changed: redraw compounds and overlaps, recount.
  App.prototype.apply = function () {
    if (this.layers.compounds) this.layers.compounds.refresh();
    if (this.layers.overlaps) this.layers.overlaps.refresh();
    this.loadSummary();
    this.updateLinks();
  };

  App.prototype.updateLinks = function () {
    var params = this.filterParams();
    this.overlapLink.href = this.config.api.overlaps_xlsx + query(params);
    this.ledgerLink.href = this.config.api.ledger_xlsx + query({ county: this.county });
  };

  App.prototype.loadSummary = function () {
    var app = this, seq = (this.summarySeq = (this.summarySeq || 0) + 1);
    this.getJSON(this.config.api.summary + query(this.filterParams())).then(function (s) {
      if (seq !== app.summarySeq) return;
      app.summaryData = s;
      var words = '符合条件的小区 ' + num(s.compounds) + ' 个' +
        (s.overdue ? '，逾期 ' + num(s.overdue) + ' 个' : '') +
        (app.asOf ? '（' + cnDate(app.asOf) + '）' : '');
      app.summaryBox.textContent = words;
      Object.keys(s.by_status).forEach(function (status) {
        var cell = document.querySelector('[data-count="' + status + '"]');
        if (cell) cell.textContent = num(s.by_status[status]);
      });
    }, function () {});
  };

  // A 宗地代码 or its start (county code first); a 28-character 不动产单元代码 holds one.
  var PARCEL_CODE = /^[0-9]{6}[0-9A-Z]{0,22}$/;

  // Compounds by name or code; parcels too when the text looks like a 宗地代码 (or its start).
  // Choosing a parcel zooms to it and opens its popup with the link to its check page.
  App.prototype.search = function (text, jump) {
    var app = this, q = (text || '').trim(), list = this.results;
    if (!q) { clear(list); return; }
    var seq = (this.searchSeq = (this.searchSeq || 0) + 1);
    var url = this.config.api.compounds + query({ county: this.county, q: q, limit: 20, as_of: this.asOf });
    var code = q.toUpperCase(), parcels = null;
    if (PARCEL_CODE.test(code)) {
      var prefix = code.length === 28 ? code.slice(0, 19) : code;
      parcels = this.getJSON(this.config.api.parcels + query({ county: this.county, q: prefix, limit: 10 }));
    }
    Promise.all([this.getJSON(url), parcels]).then(function (found) {
      if (seq !== app.searchSeq) return;
      var fc = found[0], pc = found[1];
      clear(list);
      if (pc) {
        pc.features.forEach(function (f) {
          var p = f.properties, item = el('li', 'tm-result tm-result-parcel');
          item.tabIndex = 0;
          add(item, el('span', 'tm-result-kind', '宗地 '), el('span', 'tm-result-name', p.code),
            el('span', 'tm-muted', ' ' + (codesOf(p.compound_codes).join('、') || '未关联小区')));
          function go() { app.showParcel(f); }
          item.addEventListener('click', go);
          item.addEventListener('keydown', function (e) { if (e.key === 'Enter') go(); });
          add(list, item);
        });
        if (pc.numberMatched > pc.numberReturned) {
          add(list, el('li', 'tm-muted', '宗地共 ' + num(pc.numberMatched) + ' 宗，只列出前 ' + pc.numberReturned + ' 宗'));
        }
      }
      if (!fc.features.length && !(pc && pc.features.length)) add(list, el('li', 'tm-muted', '没有找到“' + q + '”'));
      fc.features.forEach(function (f) {
        var p = f.properties, item = el('li', 'tm-result');
        item.tabIndex = 0;
        add(item, swatch(app.statusColour(p.status)), el('span', 'tm-result-name', p.name),
          el('span', 'tm-muted', ' ' + p.code));
        function go() { app.openCard(p.code, true); }
        item.addEventListener('click', go);
        item.addEventListener('keydown', function (e) { if (e.key === 'Enter') go(); });
        add(list, item);
      });
      if (fc.numberMatched > fc.numberReturned) {
        add(list, el('li', 'tm-muted', '共 ' + num(fc.numberMatched) + ' 个，只列出前 ' + fc.numberReturned + ' 个'));
      }
      if (!jump) return;
      if (pc && pc.features.length) app.showParcel(pc.features[0]);
      else if (fc.features.length) app.openCard(fc.features[0].properties.code, true);
    }, function () {});
  };
})(window, window.document, window.L, window.titlemap);
