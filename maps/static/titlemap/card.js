// card.js — the hover tip, clicks on the map and the compound card.
(function (window, document, L, T) {
  'use strict';

  var App = T.App, U = T.util;
  var el = U.el, add = U.add, clear = U.clear, pct = U.pct, num = U.num, cnDate = U.cnDate,
    cnMoment = U.cnMoment, query = U.query, fill = U.fill, swatch = U.swatch, m2 = U.m2,
    row = U.row;

  // -- hover and click on compounds ------------------------------------------------------------

  App.prototype.hideTip = function () {
    if (this.tip && this.map.hasLayer(this.tip)) this.map.removeLayer(this.tip);
    this.map.getContainer().style.cursor = '';
  };

  App.prototype.onMove = function (e) {
    var tiles = this.layers.compounds;
    if (this.hoverLock) return this.hideTip();
    var pieces = this.piecesAt(e.latlng);
    // over a piece, the piece is what a click opens: the compound is not offered
    var f = !pieces.length && tiles && tiles._map ? tiles.hit(e.latlng) : null;
    var parcels = f && f.properties.agg ? [] : this.parcelsAt(e.latlng);
    if (!f && !parcels.length && !pieces.length) return this.hideTip();
    var p = f ? f.properties : {}, body = el('div', 'tm-tip-body');
    pieces.forEach(function (piece) {
      add(body, el('strong', 'tm-tip-piece', piece.label + ' ' + (m2(piece.area_m2) || '')));
    });
    if (f && p.agg) {
      add(body, el('strong', null, '此处 ' + num(p.n) + ' 个小区'));
      Object.keys(this.styles.status).forEach(function (s) {
        if (p['n_' + s]) {
          add(body, add(el('div'), swatch(this.statusColour(s), 'tm-swatch tm-swatch-small'),
            this.statusLabel(s) + ' ' + num(p['n_' + s])));
        }
      }, this);
      add(body, el('div', 'tm-muted', '点击放大'));
    } else if (f) {
      add(body, el('strong', 'tm-tip-name', p.name),
        add(el('div'), swatch(this.statusColour(p.status), 'tm-swatch tm-swatch-small'),
          this.statusLabel(p.status) + (p.overdue ? ' · 逾期' : '')));
    }
    parcels.forEach(function (parcel) {
      add(body, el('div', 'tm-tip-parcel', '宗地 ' + parcel.properties.code));
    });
    if (!this.tip) this.tip = L.tooltip({ direction: 'top', offset: [0, -8], className: 'tm-tip' });
    this.tip.setLatLng(e.latlng).setContent(body);
    if (!this.map.hasLayer(this.tip)) this.tip.openOn(this.map);
    this.map.getContainer().style.cursor = 'pointer';
  };

  // A problem piece opens what it is; a compound opens its card (listing its parcels, those
  // under the click first); a parcel outside every compound opens a popup with its figures
  // and the link to its page.
  App.prototype.onClick = function (e) {
    var tiles = this.layers.compounds;
    if (this.hoverLock) return;
    var pieces = this.piecesAt(e.latlng);
    if (pieces.length) return this.openPieces(pieces, e.latlng);
    var f = tiles && tiles._map ? tiles.hit(e.latlng) : null;
    if (f && f.properties.agg) {
      this.map.setView(e.latlng, Math.min(this.map.getZoom() + 2, 18));
      return;
    }
    var parcels = this.parcelsAt(e.latlng);
    if (f) {
      this.openCard(f.properties.code, false, parcels.map(function (x) { return x.properties; }));
    } else if (parcels.length) {
      this.openParcels(parcels, e.latlng);
    }
  };

  // -- the card -------------------------------------------------------------------------------------

  // `clicked`: the parcels (properties) under the click that opened the card.
  App.prototype.openCard = function (code, zoomTo, clicked) {
    var app = this;
    this.cardCode = code;
    this.cardClicked = clicked || [];
    var url = fill(this.config.api.card, { code: code }) + query({ county: this.county, as_of: this.asOf });
    return this.getJSON(url).then(function (card) {
      if (app.cardCode !== code) return;
      app.renderCard(card);
      app.select(card.geometry);
      if (zoomTo && card.bbox) {
        var b = card.bbox;
        app.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {
          maxZoom: 17, paddingTopLeft: [340, 40], paddingBottomRight: [380, 40]
        });
      }
    }, function () {});
  };

  App.prototype.closeCard = function () {
    this.cardCode = null;
    this.card.hidden = true;
    if (this.legendFolded) this.legend.classList.remove('tm-collapsed');
    this.legendFolded = false;
    clear(this.cardBody);
    this.select(null);
  };

  App.prototype.changeText = function (field, value) {
    var labels = this.config.labels;
    if (value === null || value === undefined || value === '') return '—';
    if (field === 'status') return this.statusLabel(value);
    if (field === 'blockers') {
      return value.length ? value.map(function (b) { return labels.blockers[b] || b; }).join('、') : '无';
    }
    if (Array.isArray(value)) return value.join('、') || '—';
    if (/^(deadline|opened_on|closed_on)$/.test(field)) return cnDate(value);
    return String(value);
  };

  // What the county's ledger wrote for the blockers and the status, when it is its own words.
  App.prototype.countyWords = function (ledger) {
    var parts = [];
    if (ledger.blocker_words && ledger.blocker_words.length) parts.push(ledger.blocker_words.join('、'));
    if (ledger.status_word) parts.push('化解状态“' + ledger.status_word + '”');
    return parts.join('；');
  };

  App.prototype.renderCard = function (card) {
    var body = clear(this.cardBody), ledger = card.ledger, app = this;
    var status = ledger ? ledger.status : 'not_on_ledger';
    var head = el('div', 'tm-card-head');
    add(head, el('h3', 'tm-card-name', card.name), el('div', 'tm-muted tm-card-code', card.code));
    var badge = add(el('div', 'tm-status'), swatch(this.statusColour(status)),
      el('span', 'tm-card-status', ledger ? ledger.status_label : '不在台账'));
    if (ledger && ledger.overdue) add(badge, el('span', 'tm-badge tm-badge-overdue', '逾期'));
    add(head, badge);
    if (card.as_of) {
      var then = card.as_of_state;
      add(head, add(el('div', 'tm-status tm-asof'),
        el('span', null, cnDate(card.as_of) + '：'),
        then ? swatch(this.statusColour(then.status)) : null,
        el('span', 'tm-card-asof-status', then ? then.status_label + (then.overdue ? '（逾期）' : '')
          : '尚未列入台账')));
    }
    add(body, head);

    var basics = el('table', 'tm-table');
    row(basics, '地址', card.address);
    row(basics, '乡镇（街道）', card.township);
    var dev = row(basics, '开发企业', card.developer);
    dev.classList.add('tm-card-developer');
    if (card.developer_credit_status === 'blacklisted') {
      var mark = el('span', 'tm-badge tm-badge-blacklist', '失信名单');
      mark.title = (card.developer_blacklist_reason || '') +
        (card.developer_blacklisted_on ? '（' + cnDate(card.developer_blacklisted_on) + '列入）' : '');
      add(dev, ' ', mark);
      if (card.developer_blacklist_reason) add(dev, el('div', 'tm-muted', card.developer_blacklist_reason));
    } else if (card.developer_credit_status === 'unreachable') {
      add(dev, ' ', el('span', 'tm-badge tm-badge-blacklist', '失联'));
    }
    row(basics, '统一社会信用代码', card.developer_credit_code);
    row(basics, '已售套数', num(card.units_sold));
    row(basics, '占地面积', card.area_m2 === null ? null : num(card.area_m2) + ' 平方米');
    add(body, el('h4', null, '基本情况'), basics);
    this.cardParcels = el('div', 'tm-card-parcels');
    add(body, this.cardParcels);
    this.loadCardParcels(card.code);

    if (ledger) {
      var t = el('table', 'tm-table');
      row(t, '台账编号', ledger.ledger_no);
      row(t, '问题房屋（任务）套数', num(ledger.units_task));
      row(t, '首次登记', num(ledger.units_first_registered) + ' 套 · ' + pct(ledger.first_rate));
      row(t, '转移登记', num(ledger.units_transferred) + ' 套 · ' + pct(ledger.transfer_rate));
      row(t, '总体登记率', pct(ledger.overall_rate));
      var blockers = row(t, '卡点', this.changeText('blockers', ledger.blockers || []));
      // the county's own words under the categories (textContent: shown as text, never HTML)
      var words = this.countyWords(ledger);
      if (words) add(blockers, el('div', 'tm-muted tm-card-words', '县台账原文：' + words));
      row(t, '问题描述', ledger.blocker_note);
      row(t, '牵头单位', ledger.lead_department);
      row(t, '配合单位', (ledger.cooperating_departments || []).join('、'));
      row(t, '包抓领导', ledger.supervising_leader);
      row(t, '化解方案', ledger.plan);
      row(t, '专班负责人', ledger.task_force_lead);
      var due = row(t, '完成时限', cnDate(ledger.deadline));
      if (ledger.overdue) add(due, ' ', el('span', 'tm-badge tm-badge-overdue', '已逾期'));
      row(t, '挂账日期', cnDate(ledger.opened_on));
      if (ledger.closed_on) row(t, '销号日期', cnDate(ledger.closed_on));
      if (ledger.close_reason) row(t, '销号理由', ledger.close_reason);
      add(body, el('h4', null, '化解台账'), t);
    } else {
      add(body, el('p', 'tm-flag', '该小区不在化解台账上'));
    }

    if (card.overlaps && card.overlaps.length) {
      var list = el('ul', 'tm-list');
      card.overlaps.forEach(function (o) {
        add(list, el('li', null, o.planned_name + '（' + o.kind_label + '）：' + num(o.overlap_m2) +
          ' 平方米，占 ' + o.percent.toFixed(1) + '%'));
      });
      add(body, el('h4', null, '与规划片区重叠'), list);
    }

    T.cardSections.forEach(function (section) {
      var box = el('div', 'tm-card-section');
      add(body, box);
      section.call(app, card, box);
    });

    if (card.history && card.history.length) {
      var history = el('ol', 'tm-history');
      card.history.slice().reverse().forEach(function (ev) {
        var item = el('li');
        add(item, el('div', 'tm-history-head', cnMoment(ev.at) + ' · ' + ev.action_label + ' · ' + ev.user));
        Object.keys(ev.changes || {}).forEach(function (field) {
          var pair = ev.changes[field] || [];
          var label = app.config.labels.fields[field] || field;
          add(item, el('div', 'tm-history-change', label + '：' + app.changeText(field, pair[0]) +
            ' → ' + app.changeText(field, pair[1])));
        });
        if (ev.note) add(item, el('div', 'tm-history-note', ev.note));
        add(history, item);
      });
      add(body, el('h4', null, '办理历史（' + card.history.length + '）'), history);
    }
    this.card.hidden = false;
    this.card.scrollTop = 0;
    if (this.legend && !this.legendFolded) {
      this.legend.classList.add('tm-collapsed');
      this.legendFolded = true;
    }
  };

  // The compound's parcels in its card, each with its link; those under the click come first
  // (and those under it that are not the compound's are listed too).
  App.prototype.loadCardParcels = function (code) {
    var app = this, box = this.cardParcels, clicked = this.cardClicked || [];
    var url = this.config.api.parcels + query({ county: this.county, compound: code, limit: 200 });
    this.getJSON(url, true).then(function (fc) {
      if (app.cardCode !== code || app.cardParcels !== box) return;
      var under = clicked.map(function (p) { return p.code; });
      var own = fc.features.map(function (f) { return f.properties; });
      var ownCodes = own.map(function (p) { return p.code; });
      var items = clicked.filter(function (p) { return ownCodes.indexOf(p.code) === -1; })
        .concat(own.slice().sort(function (a, b) {
          return (under.indexOf(b.code) !== -1) - (under.indexOf(a.code) !== -1);
        }));
      add(box, el('h4', null, '宗地（' + fc.numberMatched + '）'));
      if (!items.length) add(box, el('p', 'tm-flag', '该小区未关联任何宗地'));
      var list = el('ul', 'tm-parcel-list');
      items.forEach(function (p) {
        var item = add(el('li'), el('span', 'tm-parcel-code', p.code), ' ',
          el('span', 'tm-muted', m2(p.recorded_area_m2) || ''));
        if (under.indexOf(p.code) !== -1) add(item, ' ', el('span', 'tm-badge tm-badge-here', '点击处'));
        if (ownCodes.indexOf(p.code) === -1) add(item, ' ', el('span', 'tm-muted', '（未关联本小区）'));
        add(item, app.parcelLink(p.code));
        add(list, item);
      });
      add(box, list);
      if (fc.numberMatched > fc.numberReturned) {
        add(box, el('div', 'tm-muted', '只列出前 ' + fc.numberReturned + ' 宗'));
      }
    }, function (error) {
      if (app.cardCode === code) add(box, el('p', 'tm-error', '宗地加载失败 / parcels failed: ' + error.message));
    });
  };
})(window, window.document, window.L, window.titlemap);
