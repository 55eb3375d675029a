// pages/task.js — a task's page (/tasks/{id}): the files attached to the task, from the
// compound files API (GET /api/compounds/{code}/files?task_id=), and for those who answer the
// task an upload that attaches one (POST, multipart: file, title, task_id; the CSRF token as
// the header X-CSRF-Token). The page is whole without it: the section stays hidden.
(function (window, document) {
  'use strict';

  var section = document.querySelector('.tm-task-files');
  if (!section || !window.fetch || !window.FormData) return;
  var url = section.getAttribute('data-files');
  var base = url.split('?')[0], query = url.slice(base.length);
  var county = new URLSearchParams(query).get('county') || '';
  var attach = section.getAttribute('data-attach') === '1';
  var form = section.querySelector('form.tm-task-upload');
  var state = section.querySelector('.tm-task-upload-state');
  var token = document.querySelector('input[name=csrf_token]');

  function fileItem(file) {
    var item = document.createElement('li'), link = document.createElement('a');
    var name = file.name || String(file.id);
    link.textContent = file.title && file.title !== name ? file.title + '（' + name + '）' : name;
    link.href = file.url || '/files/' + encodeURIComponent(file.id);
    item.appendChild(link);
    var who = [file.uploaded_by, String(file.uploaded_at || '').slice(0, 16).replace('T', ' ')]
      .filter(Boolean).join(' · ');
    if (who) {
      var meta = document.createElement('span');
      meta.className = 'tm-muted';
      meta.textContent = ' ' + who;
      item.appendChild(meta);
    }
    return item;
  }

  function show(body) {
    var files = body && Array.isArray(body.files) ? body.files : [];
    var list = section.querySelector('ul');
    while (list.firstChild) list.removeChild(list.firstChild);
    files.forEach(function (file) { list.appendChild(fileItem(file)); });
    var upload = attach && !!(body && body.may_upload);
    if (upload && body.accept) form.querySelector('input[type=file]').accept = body.accept.join(',');
    form.hidden = !upload;
    section.hidden = !files.length && !upload;
  }

  function load() {
    return fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(show)
      .catch(function () { /* no files API: the section stays hidden */ });
  }

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    state.textContent = '上传中…';
    var target = base + (county ? '?county=' + encodeURIComponent(county) : '');
    fetch(target, {
      method: 'POST', credentials: 'same-origin', body: new window.FormData(form),
      headers: { Accept: 'application/json', 'X-CSRF-Token': token ? token.value : '' }
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          var detail = body.detail || response.status + ' ' + response.statusText;
          throw new Error(typeof detail === 'string' ? detail : JSON.stringify(detail));
        }
        state.textContent = '已上传 / uploaded';
        form.reset();
        return load();
      });
    }).catch(function (error) {
      state.textContent = String(error.message || error);
    });
  });

  load();
})(window, window.document);
