// files.js — a compound's papers (一小区一档) on its card, and the site photos on the map.
/*
 * The card's section (titlemap.cardSections): the compound's files, newest first — title,
 * name, size, who uploaded them and when; images with their thumbnails; each a download link —
 * and, for those who may upload (the answer's `may_upload`: editors of the compound's entry and
 * the office), a form: a file and its title, sent as FormData by App.send (which adds the CSRF
 * header). The county's papers are for its signed-in people: nobody else sees the list.
 *
 * The photo points (现场照片): a Leaflet layer made when the page's layer control is (a
 * Leaflet init hook, so neither main.js nor the page changes), offered in that control to
 * signed-in people, off at first. Switched on, it asks /api/photos for the view (again after
 * each move) and draws a small camera per located photo; a click shows the thumbnail, the time
 * it was taken and a link to the compound's card. Every text from data is set as textContent.
 */
(function (window, document, L, T) {
  'use strict';

  var App = T.App, U = T.util;
  var el = U.el, add = U.add, clear = U.clear, query = U.query, fill = U.fill,
    cnMoment = U.cnMoment;
  var FILES_URL = '/api/compounds/{code}/files', PHOTOS_URL = '/api/photos';
  var KIND_LABELS = { pdf: 'PDF', image: '图片', office: '文档' };
  var MB = 1024 * 1024;

  function sizeText(bytes) {
    return bytes >= MB ? (bytes / MB).toFixed(1) + ' MB' : Math.max(1, Math.round(bytes / 1024)) + ' KB';
  }

  function detailOf(answer) {
    var detail = answer.body && answer.body.detail;
    if (typeof detail === 'string') return detail;
    if (Array.isArray(detail) && detail.length && detail[0].msg) return detail[0].msg;
    return '上传失败（' + answer.status + '）/ upload failed';
  }

  function downloadLink(f, className, text) {
    var a = el('a', className, text);
    a.href = f.url;
    a.setAttribute('download', '');
    return a;
  }

  // -- the card's section ------------------------------------------------------------------------

  function fileItem(f) {
    var item = el('li', 'tm-file-item');
    item.setAttribute('data-file-id', String(f.id));
    if (f.thumb) {
      var img = el('img', 'tm-file-thumb');
      img.src = f.thumb;
      img.alt = f.title || f.name;
      add(item, add(downloadLink(f, 'tm-file-thumb-link'), img));
    } else {
      add(item, el('span', 'tm-file-kind tm-file-kind-' + f.kind, KIND_LABELS[f.kind] || f.kind));
    }
    var meta = [f.title ? f.name : null, sizeText(f.size_bytes), f.uploaded_by, cnMoment(f.uploaded_at)];
    if (f.taken_at) meta.push('拍摄 ' + cnMoment(f.taken_at));
    add(item, add(el('div', 'tm-file-text'), downloadLink(f, 'tm-file-name', f.title || f.name),
      el('div', 'tm-muted tm-file-meta', meta.filter(Boolean).join(' · '))));
    return item;
  }

  T.cardSections.push(function (card, box) {
    var app = this, body = el('div', 'tm-file-body');
    box.classList.add('tm-file-section');
    add(box, el('h4', null, '档案资料（一小区一档）'), body);
    this.whoami().then(function (me) {
      if (!body.isConnected) return;
      if (!me.signed_in) {
        add(body, el('p', 'tm-muted', '登录后可查看、上传本小区的档案资料'));
        return;
      }
      app.loadFiles(card.code, body);
    });
  });

  App.prototype.loadFiles = function (code, body, done) {
    var app = this;
    var url = fill(FILES_URL, { code: code }) + query({ county: this.county });
    return this.getJSON(url, true).then(function (answer) {
      if (!body.isConnected) return;
      clear(body);
      if (answer.files.length) {
        var list = el('ul', 'tm-file-list');
        answer.files.forEach(function (f) { add(list, fileItem(f)); });
        add(body, list);
      } else {
        add(body, el('p', 'tm-muted tm-file-none', '尚无档案资料'));
      }
      if (answer.may_upload) add(body, app.uploadForm(code, body, answer));
      if (done) add(body, el('div', 'tm-file-message tm-file-done', done));
    }, function (error) {
      if (!body.isConnected) return;
      clear(body);
      add(body, el('p', 'tm-error', '档案资料加载失败 / files failed: ' + error.message));
    });
  };

  App.prototype.uploadForm = function (code, body, answer) {
    var app = this, form = el('form', 'tm-file-form');
    var file = el('input', 'tm-file-input');
    file.type = 'file';
    file.name = 'file';
    file.accept = (answer.accept || []).join(',');
    var title = el('input', 'tm-file-title');
    title.type = 'text';
    title.name = 'title';
    title.maxLength = 200;
    title.placeholder = '标题：批复、会议纪要、缴款凭证、现场照片…';
    var button = el('button', 'tm-button tm-file-send', '上传');
    button.type = 'submit';
    var message = el('div', 'tm-file-message');
    add(form, el('div', 'tm-file-form-head', '上传资料'), file, title,
      add(el('div', 'tm-file-buttons'), button),
      el('div', 'tm-muted', 'PDF、图片（JPEG/PNG）、Word/Excel/PowerPoint，每个不超过 ' +
        answer.limit_mb + ' MB；照片的拍摄时间和位置取自其 EXIF'), message);

    function say(text, isError) {
      message.textContent = text;
      message.className = 'tm-file-message' + (isError ? ' tm-error' : ' tm-muted');
    }

    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var chosen = file.files && file.files[0];
      if (!chosen) return say('请选择文件 / choose a file', true);
      if (chosen.size > answer.limit_mb * MB) {
        return say('文件超过上限 ' + answer.limit_mb + ' MB / larger than the limit', true);
      }
      button.disabled = true;
      say('正在上传… / uploading');
      app.send('POST', fill(FILES_URL, { code: code }) + query({ county: app.county }),
        new window.FormData(form)).then(function (answer_) {
        button.disabled = false;
        if (!answer_.ok) return say(detailOf(answer_), true);
        app.loadFiles(code, body, '已上传 / uploaded: ' + (answer_.body.title || answer_.body.name));
        if (app.photoLayer && app.photoLayer._map) app.photoLayer.refresh();
      }, function () {
        button.disabled = false;
        say('无法连接服务器 / the server cannot be reached', true);
      });
    });
    return form;
  };

  // -- the photo points ----------------------------------------------------------------------------

  var CAMERA = L.divIcon({ className: 'tm-file-camera', iconSize: [18, 14], iconAnchor: [9, 7],
    popupAnchor: [0, -8], html: false });

  function photoPopup(app, p) {
    var box = el('div', 'tm-file-photo');
    var img = el('img', 'tm-file-photo-img');
    img.src = p.thumb;
    img.alt = p.title || p.name;
    var open = el('a', 'tm-file-photo-compound', p.compound_name + ' ›');
    open.href = '#';
    open.addEventListener('click', function (event) {
      event.preventDefault();
      app.openCard(p.compound, false);
    });
    add(box, add(downloadLink(p, 'tm-file-photo-link'), img),
      el('div', 'tm-file-photo-title', p.title || p.name),
      el('div', 'tm-muted tm-file-photo-time',
        p.taken_at ? '拍摄于 ' + cnMoment(p.taken_at) : '上传于 ' + cnMoment(p.uploaded_at)),
      open);
    return box;
  }

  var PhotoLayer = L.LayerGroup.extend({
    initialize: function (app) {
      L.LayerGroup.prototype.initialize.call(this);
      this.app = app;
      this.asked = 0;
    },

    onAdd: function (map) {
      L.LayerGroup.prototype.onAdd.call(this, map);
      map.on('moveend', this.refresh, this);
      this.refresh();
    },

    onRemove: function (map) {
      map.off('moveend', this.refresh, this);
      this.app.notice('photos', null);
      L.LayerGroup.prototype.onRemove.call(this, map);
    },

    // The located photos in (a little more than) the view.
    refresh: function () {
      var layer = this, app = this.app, asked = ++this.asked;
      if (!this._map) return;
      var b = this._map.getBounds().pad(0.2);
      var box = [Math.max(b.getWest(), -180), Math.max(b.getSouth(), -90),
        Math.min(b.getEast(), 180), Math.min(b.getNorth(), 90)];
      var url = PHOTOS_URL + query({ county: app.county,
        bbox: box.map(function (n) { return n.toFixed(6); }).join(',') });
      app.getJSON(url, true).then(function (fc) {
        if (asked !== layer.asked || !layer._map) return;
        layer.clearLayers();
        fc.features.forEach(function (f) {
          var c = f.geometry.coordinates, p = f.properties;
          var marker = L.marker([c[1], c[0]], { icon: CAMERA, title: p.title || p.name, keyboard: false });
          marker.bindPopup(function () { return photoPopup(app, p); },
            { className: 'tm-file-popup', maxWidth: 280 });
          layer.addLayer(marker);
        });
        app.notice('photos', null);
      }, function (error) {
        if (asked === layer.asked) app.notice('photos', '现场照片加载失败：' + error.message, 'error');
      });
    }
  });
  T.PhotoLayer = PhotoLayer;

  // The page's layer control (folium makes it after the layers, before titlemap.ready): the
  // photo layer joins it for signed-in people.
  L.Control.Layers.addInitHook(function () {
    var app = T.app, control = this;
    if (!app || app.photoLayer) return;
    app.photoLayer = new PhotoLayer(app);
    app.whoami().then(function (me) {
      if (me.signed_in) control.addOverlay(app.photoLayer, '现场照片');
    });
  });
})(window, window.document, window.L, window.titlemap);
