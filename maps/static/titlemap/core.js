// core.js — the titlemap namespace, small DOM and number helpers, the App and its state.
/*
 * The web map's own scripts (登记难化解一张图), loaded in this order by maps/webmap.py, each
 * adding to the one global `titlemap` (mvt.js, loaded first, adds the tile decoder):
 *   core.js     helpers (titlemap.util) and titlemap.App: state, API calls, notices
 *   layers.js   compounds from vector tiles, the GeoJSON layers and their styles
 *   parcels.js  the parcel-check problem pieces and parcels: layer, popups, links
 *   card.js     the hover tip, clicks, the compound card
 *   filters.js  the panel: search, filters, date, downloads, summary
 *   charts.js   the county's figures and the progress chart
 *   main.js     layers made for the page, the panels' start, the entry points
 *
 * Each is a plain script, one function called with Leaflet (L) and the namespace (T); no
 * build step, nothing loaded from outside the app.
 *
 * The folium page calls, in order:
 *   titlemap.start(map, config)          the app: panes, renderers, state
 *   titlemap.layer(kind, options)        each layer, which folium adds to the layer control
 *   titlemap.ready(map)                  panels: search, filters, date, figures, card, legend
 *
 * Data comes from the app's API only. Compounds are drawn from vector tiles on canvas
 * (CompoundTiles), everything else from GeoJSON (DataLayer), limited to the view where the
 * layer is large. Every text that comes from data is written with textContent — never as
 * HTML — so a compound called <img onerror=…> is shown as those characters.
 *
 * Parcels (宗地, from zoom 15) answer clicks by their outline: alone, a popup with the
 * parcel's figures and a link to its check page (/parcels/{code}); under a compound, the
 * compound's card lists the parcels with their links. The parcel-check problem pieces
 * (ProblemLayer) are fetched once, when that layer is first switched on — the county's batch
 * run takes seconds — and the search box also finds parcels by their 19-character code.
 */
(function (window, document, L, T) {
  'use strict';

  // -- small helpers ------------------------------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function add(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      parent.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return parent;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function pct(x) {
    return x === null || x === undefined ? '—' : (x * 100).toFixed(1) + '%';
  }

  function num(x) {
    return x === null || x === undefined ? '—' : Number(x).toLocaleString('zh-CN');
  }

  function cnDate(iso) {
    if (!iso) return '—';
    var d = String(iso).slice(0, 10).split('-');
    if (d.length !== 3) return String(iso);
    return Number(d[0]) + '年' + Number(d[1]) + '月' + Number(d[2]) + '日';
  }

  function cnMoment(iso) {
    if (!iso) return '—';
    var time = String(iso).slice(11, 16);
    return cnDate(iso) + (time ? ' ' + time : '');
  }

  function query(params) {
    var q = new URLSearchParams();
    Object.keys(params).forEach(function (key) {
      var value = params[key];
      if (value === null || value === undefined || value === '') return;
      if (Array.isArray(value)) value.forEach(function (v) { q.append(key, v); });
      else q.append(key, String(value));
    });
    var s = q.toString();
    return s ? '?' + s : '';
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, name) {
      return encodeURIComponent(values[name]);
    });
  }

  function swatch(colour, className) {
    var s = el('span', className || 'tm-swatch');
    s.style.background = colour;
    return s;
  }

  // A parcel's compound codes: "a,b" in the map layer, a list elsewhere.
  function codesOf(value) {
    if (!value) return [];
    return Array.isArray(value) ? value : String(value).split(',').filter(Boolean);
  }

  function m2(x) {
    return x === null || x === undefined ? null
      : Number(x).toLocaleString('zh-CN', { maximumFractionDigits: 2 }) + ' 平方米';
  }

  // A table row: the label, the value (— when empty) and an optional node after it.
  function row(table, label, value, extra) {
    var tr = add(el('tr'), el('th', null, label));
    var td = el('td', null, value === null || value === undefined || value === '' ? '—' : value);
    if (extra) add(td, ' ', extra);
    add(table, add(tr, td));
    return td;
  }

  // On the namespace for the later scripts, which take them as locals.
  T.util = {
    el: el, add: add, clear: clear, pct: pct, num: num, cnDate: cnDate, cnMoment: cnMoment,
    query: query, fill: fill, swatch: swatch, codesOf: codesOf, m2: m2, row: row
  };

  // -- the app ---------------------------------------------------------------------------------

  function App(map, config) {
    this.map = map;
    this.config = config;
    this.county = config.county;
    this.styles = config.styles;
    this.filters = { status: [], blocker: '', lead_department: '', township: '', planned_area: '', overdue: false };
    this.asOf = null;
    this.layers = {};
    this.pending = 0;
    this.hoverLock = false;
    this.notices = {};
    this.cardCode = null;
    this.timing = { firstRender: null };
    this.waiting = [];
    this.settled = false;
    var panes = [['tm-context', 250, false], ['tm-compounds', 300, false], ['tm-planned', 410, false],
      ['tm-problems', 440, false], ['tm-complaints', 450, true], ['tm-selection', 460, false]];
    panes.forEach(function (p) {
      var pane = map.createPane(p[0]);
      pane.style.zIndex = p[1];
      if (!p[2]) pane.style.pointerEvents = 'none';
    });
    if (config.extent) {
      var e = config.extent;
      var pad = config.padding || [330, 10, 10, 10];
      map.fitBounds([[e[1], e[0]], [e[3], e[2]]], {
        animate: false, paddingTopLeft: [pad[0], pad[1]], paddingBottomRight: [pad[2], pad[3]]
      });
    }
    this.renderers = {
      context: L.canvas({ pane: 'tm-context', padding: 0.3 }),
      planned: L.canvas({ pane: 'tm-planned', padding: 0.3 }),
      complaints: L.canvas({ pane: 'tm-complaints', padding: 0.3, tolerance: 3 }),
      problems: L.canvas({ pane: 'tm-problems', padding: 0.3 })
    };
  }

  App.prototype.statusColour = function (status) {
    var s = this.styles.status[status] || this.styles.status.not_on_ledger;
    return s.colour;
  };

  App.prototype.statusLabel = function (status) {
    var s = this.styles.status[status];
    return s ? s.label : status;
  };

  App.prototype.filterParams = function () {
    var f = this.filters, params = { county: this.county };
    if (f.status.length) params.status = f.status.slice();
    if (f.blocker) params.blocker = f.blocker;
    if (f.lead_department) params.lead_department = f.lead_department;
    if (f.township) params.township = f.township;
    if (f.planned_area) params.planned_area = f.planned_area;
    if (f.overdue) params.overdue = 'true';
    if (this.asOf) params.as_of = this.asOf;
    return params;
  };

  // `quiet`: the caller reports a failure itself.
  App.prototype.getJSON = function (url, quiet) {
    var self = this;
    this.pending++;
    return fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) {
            var detail = body && body.detail ? body.detail : response.status + ' ' + response.statusText;
            throw new Error(typeof detail === 'string' ? detail : JSON.stringify(detail));
          }
          return body;
        });
      })
      .catch(function (error) {
        if (!quiet) self.message(String(error.message || error), true);
        throw error;
      })
      .finally(function () { self.pending--; });
  };

  // Who is signed in (/api/me: name, role, department, csrf), asked once per page.
  App.prototype.whoami = function () {
    if (!this.me) {
      this.me = this.getJSON('/api/me', true).catch(function () { return { signed_in: false }; });
    }
    return this.me;
  };

  // A write as the signed-in person: JSON (or FormData) with the session's CSRF token.
  // Resolves to {status, body} whatever the status (a 409 carries what changed meanwhile);
  // rejects only when the server cannot be reached.
  App.prototype.send = function (method, url, data) {
    var self = this;
    return this.whoami().then(function (me) {
      var headers = { Accept: 'application/json', 'X-CSRF-Token': me.csrf || '' };
      var body = data;
      if (!(data instanceof window.FormData) && data !== undefined) {
        headers['Content-Type'] = 'application/json';
        body = JSON.stringify(data);
      }
      self.pending++;
      return fetch(url, { method: method, credentials: 'same-origin', headers: headers, body: body })
        .then(function (response) {
          return response.json().catch(function () { return {}; }).then(function (json) {
            return { status: response.status, ok: response.ok, body: json };
          });
        })
        .finally(function () { self.pending--; });
    });
  };

  App.prototype.idle = function () {
    var tiles = this.layers.compounds;
    return !!this.settled && this.pending === 0 && !this.moving &&
      !(tiles && tiles._map && tiles.isLoading());
  };

  App.prototype.drawn = function () {
    var tiles = this.layers.compounds;
    return tiles && tiles._map ? tiles.drawn() : { codes: {}, cells: 0, counted: 0 };
  };

  // The chosen compound or parcel, outlined above every layer.
  App.prototype.select = function (geometry) {
    if (this.selection) this.map.removeLayer(this.selection);
    this.selection = null;
    if (!geometry) return;
    this.selection = L.layerGroup([
      L.geoJSON(geometry, { pane: 'tm-selection', interactive: false,
        style: { color: '#FFFFFF', weight: 6, opacity: 0.9, fill: false } }),
      L.geoJSON(geometry, { pane: 'tm-selection', interactive: false,
        style: { color: '#000000', weight: 2.5, fill: false } })
    ]).addTo(this.map);
  };

  // -- messages ---------------------------------------------------------------------------------

  App.prototype.message = function (text, isError) {
    if (!this.messageBox) return;
    var box = this.messageBox;
    box.textContent = text || '';
    box.className = 'tm-message' + (isError ? ' tm-error' : '');
    box.hidden = !text;
  };

  // `kind`: 'busy' or 'error' for a notice that is more than a remark.
  App.prototype.notice = function (name, text, kind) {
    if (text) this.notices[name] = { text: text, kind: kind || null }; else delete this.notices[name];
    if (!this.noticeBox) return;
    clear(this.noticeBox);
    var notices = this.notices;
    Object.keys(notices).forEach(function (k) {
      var line = el('div', notices[k].kind ? 'tm-notice-' + notices[k].kind : null, notices[k].text);
      if (k) line.setAttribute('data-notice', k);
      add(this.noticeBox, line);
    }, this);
  };

  // Runs `fn` once the compounds are first drawn (or after 3 s, whatever happens first).
  App.prototype.afterFirstRender = function (fn) {
    if (this.settled) return fn();
    this.waiting.push(fn);
    var app = this;
    if (!this.waitTimer) this.waitTimer = setTimeout(function () { app.settle(); }, 3000);
  };

  App.prototype.settle = function () {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.waitTimer);
    var waiting = this.waiting;
    this.waiting = [];
    waiting.forEach(function (fn) { fn(); });
  };

  // The later scripts add their methods to App.prototype.
  T.App = App;
  // Sections other scripts add to the compound card (edit.js, tasks.js, files.js): each a
  // function(card, box) called with the App as `this`, in the order the scripts load.
  T.cardSections = [];
})(window, window.document, window.L, (window.titlemap = window.titlemap || {}));
