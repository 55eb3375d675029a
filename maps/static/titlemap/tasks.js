// tasks.js — the compound card's tasks (交办任务) and the map's 逾期任务 filter, signed in only.
/*
 * The card section lists the compound's tasks from /api/tasks (department, what, due day,
 * status; a red badge 逾期 N when some are late), each linking to its page /tasks/{id}; the
 * office also gets the link to assign one (/tasks/new?compound=CODE). Anonymous readers of a
 * public map see nothing of it: tasks are the work, not the map.
 *
 * The filter (its checkbox is in filters.js) keeps the compounds with overdue tasks. Tasks
 * change no map data — the county's revision stays, its tiles stay cached — so the codes come
 * from /api/tasks/overdue when the filter is switched on, and go with every filtered request
 * as the compound filter's `code` (tiles, the summary, the overlaps and their download all
 * take it): the server narrows what it draws, also at the zooms where compounds are counted
 * per cell, and the summary counts what is shown.
 */
(function (window, document, L, T) {
  'use strict';

  var App = T.App, U = T.util;
  var el = U.el, add = U.add, clear = U.clear, cnDate = U.cnDate, query = U.query;

  // A code no compound has: the filter on and no overdue task anywhere keeps nothing.
  var NO_COMPOUND = '（无逾期任务）';

  function taskItem(task) {
    var item = el('li', 'tm-task-item' + (task.overdue ? ' tm-task-overdue' : ''));
    var link = el('a', 'tm-task-action', task.action);
    link.href = '/tasks/' + encodeURIComponent(task.id);
    var label = el('span', task.overdue ? 'tm-badge tm-task-badge' : 'tm-task-status', task.label);
    add(item, link, add(el('div', 'tm-task-meta'), task.department + ' · 限 ' + cnDate(task.due_on) +
      ' · ', label, task.overdue ? ' ' + task.days_late + ' 天（' + task.status_label + '）' : ''));
    return item;
  }

  function renderTasks(app, box, code, data) {
    var tasks = data.tasks, late = tasks.filter(function (t) { return t.overdue; }).length;
    var head = el('h4', null, '交办任务（' + tasks.length + '）');
    if (late) add(head, ' ', el('span', 'tm-badge tm-task-badge tm-task-late', '逾期 ' + late));
    add(clear(box), head);
    if (tasks.length) {
      var list = el('ul', 'tm-task-list');
      tasks.forEach(function (task) { add(list, taskItem(task)); });
      add(box, list);
    } else {
      add(box, el('div', 'tm-muted', '暂无交办任务'));
    }
    if (data.may_assign) {
      var assign = el('a', 'tm-task-new', '交办新任务');
      assign.href = '/tasks/new' + query({ compound: code, county: app.county });
      add(box, assign);
    }
  }

  // A card section (card.js calls it with the App as `this`).
  T.cardSections.push(function (card, box) {
    var app = this, code = card.code;
    box.classList.add('tm-task-section');
    box.hidden = true;
    this.whoami().then(function (me) {
      if (!me.signed_in || app.cardCode !== code) return null;
      var url = '/api/tasks' + query({ county: app.county, compound: code });
      return app.getJSON(url, true).then(function (data) {
        if (app.cardCode !== code) return;
        renderTasks(app, box, code, data);
        box.hidden = false;
      });
    }).catch(function () { /* not this county's person: the card shows no tasks */ });
  });

  // -- the 逾期任务 filter ---------------------------------------------------------------------

  // Switch the filter on (fetching the codes of the compounds with overdue tasks) or off.
  App.prototype.filterOverdueTasks = function (on) {
    var app = this;
    this.overdueTasksWanted = on;
    if (!on) {
      this.filters.overdue_tasks = false;
      this.apply();
      return Promise.resolve();
    }
    return this.getJSON('/api/tasks/overdue' + query({ county: this.county })).then(function (data) {
      if (!app.overdueTasksWanted) return;
      app.overdueTaskCodes = data.codes;
      app.filters.overdue_tasks = true;
      app.apply();
    }, function () { /* reported by getJSON */ });
  };

  var filterParams = App.prototype.filterParams;
  App.prototype.filterParams = function () {
    var params = filterParams.call(this);
    if (this.filters.overdue_tasks) {
      var codes = this.overdueTaskCodes || [];
      params.code = codes.length ? codes.slice() : [NO_COMPOUND];
    }
    return params;
  };
})(window, window.document, window.L, window.titlemap);
