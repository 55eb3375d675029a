// edit.js — "更新进展" and "销号" on the compound card, for those the card says may (card.may).
/*
 * A section of the compound card (titlemap.cardSections): the entry's measures and next step
 * for everyone; for a person who may edit the entry (card.may.edit: an editor of the lead or
 * a co-operating department, or the office), the "更新进展" form and, while the entry is open
 * (card.may.close), "销号". Viewers and anonymous readers get no control at all.
 *
 * Saving goes through the one ledger rule set: PATCH /api/ledger/{code} with the version the
 * form was opened with and only the fields the person changed (status_by_figures: new unit
 * counts set the status they say unless a status is chosen). A 409 (the entry changed
 * meanwhile) shows in the form what changed and by whom, keeps the person's inputs, takes the
 * current version and values of the fields they did not touch: saving again redoes their edit
 * on the entry as it now is — nothing is overwritten unseen. 销号 asks for what the county's
 * closing rule needs (card.closing: a written reason while units remain, or why it cannot be
 * closed yet) and posts /api/ledger/{code}/close. After a save the card is read again and the
 * compound tiles are drawn anew: their ETags follow the county's data revision, which the save
 * moved, so the map shows the new colour at once.
 */
(function (window, document, L, T) {
  'use strict';

  var App = T.App, U = T.util;
  var el = U.el, add = U.add, clear = U.clear, num = U.num, query = U.query;

  // The fields the progress form holds, as the ledger names them.
  var TRACKED = ['status', 'units_first_registered', 'units_transferred', 'blockers', 'measures',
    'plan', 'next_step'];
  var UNITS = ['units_first_registered', 'units_transferred'];
  var SETS = ['blockers', 'measures'];
  var OPEN_STATUSES = ['not_started', 'in_progress', 'stalled', 'first_registered'];

  function button(text, className) {
    var b = el('button', 'tm-button ' + className, text);
    b.type = 'button';
    return b;
  }

  function labelled(text, control, className) {
    return add(el('label', 'tm-edit-field ' + (className || '')), el('span', 'tm-edit-label', text), control);
  }

  function textArea(name, value, rows, maxLength) {
    var area = el('textarea', 'tm-edit-text');
    area.name = name;
    area.rows = rows;
    area.maxLength = maxLength;
    area.value = value || '';
    return area;
  }

  // A value as the form compares it: sets sorted, texts trimmed, none as ''.
  function norm(field, value) {
    if (SETS.indexOf(field) !== -1) return (value || []).slice().sort().join('\u0001');
    if (value === null || value === undefined) return '';
    return String(value).trim();
  }

  function same(field, a, b) {
    return norm(field, a) === norm(field, b);
  }

  function pick(ledger) {
    var out = {};
    TRACKED.forEach(function (f) {
      var v = ledger[f];
      out[f] = Array.isArray(v) ? v.slice() : v === undefined ? null : v;
    });
    return out;
  }

  // A value in a sentence: texts in quotes, so where one ends is plain.
  function shown(app, field, value) {
    var words = app.changeText(field, value);
    return (field === 'plan' || field === 'next_step') && words !== '—' ? '“' + words + '”' : words;
  }

  function apiPath(app, code, tail) {
    return '/api/ledger/' + encodeURIComponent(code) + (tail || '') + query({ county: app.county });
  }

  function detailOf(result) {
    var d = result.body && result.body.detail;
    if (!d) return result.status + ' 保存未成功 / not saved';
    return typeof d === 'string' ? d : JSON.stringify(d);
  }

  // -- the section ----------------------------------------------------------------------------

  function section(card, box) {
    var ledger = card.ledger;
    if (!ledger) return;
    box.classList.add('tm-edit');
    var measures = ledger.measures || [];
    if (measures.length || ledger.next_step) {
      var t = el('table', 'tm-table tm-edit-facts');
      U.row(t, '化解措施', measures.join('、'));
      U.row(t, '下一步', ledger.next_step);
      add(box, el('h4', null, '化解措施与下一步'), t);
    }
    var may = card.may || {};
    if (!may.edit) return;
    var app = this;
    var bar = el('div', 'tm-edit-actions'), formBox = el('div', 'tm-edit-box');
    var open = button('更新进展', 'tm-edit-open');
    open.addEventListener('click', function () { app.progressForm(card, formBox); });
    add(bar, open);
    if (may.close && ledger.status !== 'closed') {
      var close = button('销号', 'tm-edit-close-open');
      close.addEventListener('click', function () { app.closingForm(card, formBox); });
      add(bar, close);
    }
    add(box, bar, formBox);
  }

  // -- 更新进展 ---------------------------------------------------------------------------------

  App.prototype.progressForm = function (card, box) {
    var app = this, ledger = card.ledger, labels = this.config.labels;
    var state = { version: ledger.version, base: pick(ledger), task: ledger.units_task };
    var form = el('form', 'tm-edit-form tm-edit-progress');
    form.noValidate = true;
    var inputs = {};

    function number(name) {
      var input = el('input', 'tm-edit-number');
      input.type = 'number';
      input.name = name;
      input.min = 0;
      input.max = state.task;
      input.step = 1;
      input.value = ledger[name];
      inputs[name] = input;
      return input;
    }
    var figures = el('div', 'tm-edit-figures');
    add(figures,
      labelled('首次登记套数', number('units_first_registered')),
      labelled('转移登记套数', number('units_transferred')));
    var taskLine = el('div', 'tm-muted tm-edit-task', '问题房屋（任务）' + num(state.task) + ' 套');
    add(form, el('h4', null, '更新进展'), taskLine, figures);

    var statusSelect = null;
    if (ledger.status !== 'closed') {
      statusSelect = el('select', 'tm-select tm-edit-status');
      statusSelect.name = 'status';
      var auto = el('option', null, '');
      auto.value = '';
      add(statusSelect, auto);
      OPEN_STATUSES.forEach(function (s) {
        var option = el('option', null, app.statusLabel(s));
        option.value = s;
        add(statusSelect, option);
      });
      add(form, labelled('化解状态', statusSelect));
    }
    function autoLabel() {
      if (statusSelect) {
        statusSelect.options[0].textContent = '按套数推定（当前：' + app.statusLabel(state.base.status) + '）';
      }
    }
    autoLabel();

    function checks(name, items, chosen) {
      var group = el('fieldset', 'tm-edit-checks');
      group.setAttribute('data-field', name);
      items.forEach(function (item) {
        var box = el('input');
        box.type = 'checkbox';
        box.name = name;
        box.value = item[0];
        box.checked = chosen.indexOf(item[0]) !== -1;
        add(group, add(el('label', 'tm-check tm-edit-check'), box, el('span', null, item[1])));
      });
      return group;
    }
    var blockerItems = Object.keys(labels.blockers).map(function (k) { return [k, labels.blockers[k]]; });
    var known = labels.measures || [];
    var measureItems = known.map(function (m) { return [m, m]; });
    var blockerBox = checks('blockers', blockerItems, ledger.blockers || []);
    var measureBox = checks('measures', measureItems, ledger.measures || []);
    var ownMeasures = el('input', 'tm-edit-own');
    ownMeasures.name = 'own_measures';
    ownMeasures.maxLength = 500;
    ownMeasures.placeholder = '其他措施，用顿号分隔';
    function setMeasures(values) {
      Array.prototype.forEach.call(measureBox.querySelectorAll('input'), function (b) {
        b.checked = values.indexOf(b.value) !== -1;
      });
      ownMeasures.value = values.filter(function (m) { return known.indexOf(m) === -1; }).join('、');
    }
    setMeasures(ledger.measures || []);
    add(form, add(el('div', 'tm-edit-field'), el('span', 'tm-edit-label', '卡点'), blockerBox),
      add(el('div', 'tm-edit-field'), el('span', 'tm-edit-label', '化解措施'), measureBox, ownMeasures));
    inputs.plan = textArea('plan', ledger.plan, 3, 2000);
    inputs.next_step = textArea('next_step', ledger.next_step, 2, 2000);
    var note = textArea('note', '', 2, 2000);
    note.placeholder = '如：召开专班会议，补缴出让金 50 万元';
    add(form, labelled('化解方案', inputs.plan), labelled('下一步', inputs.next_step),
      labelled('进展说明（记入办理历史，日期为保存时的北京时间）', note));
    var conflict = el('div', 'tm-edit-conflict');
    conflict.hidden = true;
    var message = el('div', 'tm-edit-message tm-error');
    message.hidden = true;
    var save = el('button', 'tm-button tm-edit-save', '保存');
    save.type = 'submit';
    var cancel = button('取消', 'tm-edit-cancel');
    cancel.addEventListener('click', function () { clear(box); });
    add(form, conflict, message, add(el('div', 'tm-edit-buttons'), save, cancel));
    clear(box);
    add(box, form);

    function say(text) {
      message.textContent = text || '';
      message.hidden = !text;
      if (text) message.scrollIntoView({ block: 'nearest' });
    }

    function checked(group) {
      return Array.prototype.filter.call(group.querySelectorAll('input'), function (b) { return b.checked; })
        .map(function (b) { return b.value; });
    }

    // What the form holds now, as the ledger names the fields.
    function read() {
      var own = ownMeasures.value.split(/[,，、;；\n]+/).map(function (s) { return s.trim(); })
        .filter(Boolean);
      var measures = checked(measureBox);
      own.forEach(function (m) { if (measures.indexOf(m) === -1) measures.push(m); });
      return {
        status: statusSelect && statusSelect.value ? statusSelect.value : state.base.status,
        units_first_registered: inputs.units_first_registered.value.trim(),
        units_transferred: inputs.units_transferred.value.trim(),
        blockers: checked(blockerBox), measures: measures,
        plan: inputs.plan.value, next_step: inputs.next_step.value
      };
    }

    function write(field, value) {
      if (field === 'status') { if (statusSelect) statusSelect.value = ''; return; }
      if (field === 'blockers') {
        Array.prototype.forEach.call(blockerBox.querySelectorAll('input'), function (b) {
          b.checked = (value || []).indexOf(b.value) !== -1;
        });
      } else if (field === 'measures') {
        setMeasures(value || []);
      } else {
        inputs[field].value = value === null || value === undefined ? '' : value;
      }
    }

    function unitsProblem(values) {
      for (var i = 0; i < UNITS.length; i++) {
        var v = values[UNITS[i]], n = Number(v);
        if (v === '' || !/^\d+$/.test(v) || n > state.task) {
          return labels.fields[UNITS[i]] + '应为 0–' + state.task + ' 的整数 / a whole number from 0 to ' + state.task;
        }
      }
      return null;
    }

    function changes(values) {
      var out = {};
      TRACKED.forEach(function (f) {
        var v = values[f];
        if (UNITS.indexOf(f) !== -1) {
          if (Number(v) !== state.base[f]) out[f] = Number(v);
        } else if (!same(f, v, state.base[f])) {
          out[f] = v;
        }
      });
      return out;
    }

    // The entry changed meanwhile: say what, by whom; keep what the person changed, take the
    // rest and the version from `current`.
    function adopt(current) {
      var mine = read(), lines = [];
      TRACKED.forEach(function (f) {
        var was = state.base[f], now = current[f];
        if (same(f, was, now)) return;
        var by = null;
        (current.history || []).forEach(function (ev) {
          if (ev.changes && ev.changes[f]) by = ev.user;
        });
        lines.push((by || current.updated_by || '他人') + ' 刚把 ' + (labels.fields[f] || f) + ' 从 ' +
          shown(app, f, was) + ' 改为 ' + shown(app, f, now));
        var touched = f === 'status' ? !!(statusSelect && statusSelect.value) : !same(f, mine[f], was);
        if (!touched) write(f, now);
      });
      if (!lines.length) lines.push((current.updated_by || '他人') + ' 刚修改了该台账的其他内容');
      clear(conflict);
      add(conflict, el('strong', null, '台账已被他人修改，你的修改尚未保存 / changed meanwhile: not saved'));
      var list = el('ul', 'tm-edit-changes');
      lines.forEach(function (line) { add(list, el('li', null, line)); });
      add(conflict, list, el('div', 'tm-muted', '你的输入已保留；核对后再点“保存”，即在最新版本上重做你的修改。'));
      conflict.hidden = false;
      conflict.scrollIntoView({ block: 'nearest' });
      state.version = current.version;
      state.base = pick(current);
      state.task = current.units_task;
      UNITS.forEach(function (f) { inputs[f].max = state.task; });
      taskLine.textContent = '问题房屋（任务）' + num(state.task) + ' 套';
      autoLabel();
    }

    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var values = read(), problem = unitsProblem(values);
      if (problem) return say(problem);
      var wanted = changes(values), noteText = note.value.trim();
      // a note alone is progress too (a meeting held): it is kept as a dated event
      if (!Object.keys(wanted).length && !noteText) return say('没有改动 / nothing changed');
      say(null);
      save.disabled = true;
      var body = { version: state.version, changes: wanted, note: noteText || null, status_by_figures: true };
      app.send('PATCH', apiPath(app, card.code), body).then(function (result) {
        save.disabled = false;
        if (result.ok) return app.afterLedgerChange(card.code);
        if (result.status === 409 && result.body && result.body.current) return adopt(result.body.current);
        say(detailOf(result));
      }, function (error) {
        save.disabled = false;
        say('无法连接服务器 / the server cannot be reached: ' + (error.message || error));
      });
    });
    inputs.units_first_registered.focus();
  };

  // -- 销号 -------------------------------------------------------------------------------------

  App.prototype.closingForm = function (card, box) {
    var app = this, ledger = card.ledger, closing = card.closing || {};
    var state = { version: ledger.version };
    var form = el('form', 'tm-edit-form tm-edit-closing');
    form.noValidate = true;
    add(form, el('h4', null, '销号'),
      el('div', 'tm-edit-rule', '本县销号规则：' + (closing.label || closing.rule || '—')),
      el('div', 'tm-muted', '首次登记 ' + num(ledger.units_first_registered) + ' / ' + num(ledger.units_task) +
        ' 套，转移登记 ' + num(ledger.units_transferred) + ' / ' + num(ledger.units_task) + ' 套'));
    var message = el('div', 'tm-edit-message tm-error');
    message.hidden = true;
    var cancel = button('取消', 'tm-edit-cancel');
    cancel.addEventListener('click', function () { clear(box); });
    clear(box);
    add(box, form);
    if (closing.refusal) {
      add(form, el('p', 'tm-edit-refusal tm-flag', closing.refusal),
        add(el('div', 'tm-edit-buttons'), cancel));
      return;
    }
    var reason = textArea('reason', '', 3, 2000);
    if (closing.needs_reason) {
      reason.required = true;
      add(form, el('p', 'tm-edit-needs', closing.reason_hint || '须写明销号理由'),
        labelled('销号理由（必填）', reason));
    } else {
      add(form, labelled('销号理由（可选）', reason));
    }
    var note = textArea('note', '', 2, 2000);
    var confirm = el('button', 'tm-button tm-edit-confirm', '确认销号');
    confirm.type = 'submit';
    var conflict = el('div', 'tm-edit-conflict');
    conflict.hidden = true;
    add(form, labelled('说明（记入办理历史）', note), conflict, message,
      add(el('div', 'tm-edit-buttons'), confirm, cancel));

    function say(text) {
      message.textContent = text || '';
      message.hidden = !text;
      if (text) message.scrollIntoView({ block: 'nearest' });
    }

    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var why = reason.value.trim();
      if (closing.needs_reason && !why) {
        reason.focus();
        return say('须写明销号理由 / a reason is required: ' + (closing.reason_hint || ''));
      }
      say(null);
      confirm.disabled = true;
      var body = { version: state.version, reason: why || null, note: note.value.trim() || null };
      app.send('POST', apiPath(app, card.code, '/close'), body).then(function (result) {
        confirm.disabled = false;
        if (result.ok) return app.afterLedgerChange(card.code);
        if (result.status === 409 && result.body && result.body.current) {
          var current = result.body.current;
          state.version = current.version;
          clear(conflict);
          add(conflict, el('strong', null, '台账已被' + (current.updated_by || '他人') + '修改，尚未销号 / changed meanwhile'),
            el('div', null, '现为：首次登记 ' + num(current.units_first_registered) + ' 套，转移登记 ' +
              num(current.units_transferred) + ' 套，' + app.statusLabel(current.status)),
            el('div', 'tm-muted', '核对后再点“确认销号”。'));
          conflict.hidden = false;
          conflict.scrollIntoView({ block: 'nearest' });
          return;
        }
        say(detailOf(result));
      }, function (error) {
        confirm.disabled = false;
        say('无法连接服务器 / the server cannot be reached: ' + (error.message || error));
      });
    });
    reason.focus();
  };

  // -- after a change ---------------------------------------------------------------------------

  // The card read again, the compounds drawn anew (new revision, new tile ETags), the counts
  // and figures asked again.
  App.prototype.afterLedgerChange = function (code) {
    if (this.cardCode === code) this.openCard(code, false, this.cardClicked);
    if (this.layers.compounds && this.layers.compounds._map) this.layers.compounds.refresh();
    if (this.loadSummary) this.loadSummary();
    if (this.loadFigures && this.figuresBox) this.loadFigures();
  };

  T.cardSections.push(section);
})(window, window.document, window.L, window.titlemap);
