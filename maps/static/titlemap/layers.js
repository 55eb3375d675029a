/*
 * titlemap.js — the web map's own script (登记难化解一张图).
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
(function (window) {
  'use strict';

  var L = window.L;
  var T = (window.titlemap = window.titlemap || {});
  var document = window.document;

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

  function svg(tag, attrs) {
    var node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  // Even-odd point-in-polygon over all rings (tile units).
  function inside(rings, x, y) {
    var hit = false;
    for (var r = 0; r < rings.length; r++) {
      var ring = rings[r], n = ring.length;
      for (var i = 0, j = n - 2; i < n; j = i, i += 2) {
        var xi = ring[i], yi = ring[i + 1], xj = ring[j], yj = ring[j + 1];
        if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
      }
    }
    return hit;
  }

  // Even-odd point-in-polygon on GeoJSON rings ([[lon, lat], …]).
  function ringsContain(rings, x, y) {
    var hit = false;
    rings.forEach(function (ring) {
      for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
        if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
      }
    });
    return hit;
  }

  function geometryContains(geometry, x, y) {
    if (!geometry) return false;
    if (geometry.type === 'Polygon') return ringsContain(geometry.coordinates, x, y);
    if (geometry.type === 'MultiPolygon') {
      return geometry.coordinates.some(function (polygon) { return ringsContain(polygon, x, y); });
    }
    return false;
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

  // A 宗地代码 or its start (county code first); a 28-character 不动产单元代码 holds one.
  var PARCEL_CODE = /^[0-9]{6}[0-9A-Z]{0,22}$/;

  // -- compounds: vector tiles drawn on canvas -----------------------------------------------

  var CELL_PX = 4; // geo.tiles.CELL_PX: the side of an aggregated cell

  var CompoundTiles = L.GridLayer.extend({
    options: { pane: 'tm-compounds', updateWhenZooming: false, keepBuffer: 1, maxZoom: 22 },

    initialize: function (app, options) {
      L.GridLayer.prototype.initialize.call(this, options);
      this.app = app;
      this.data = {};
      this.version = 0;
      this.on('tileunload', function (e) {
        delete this.data[this._tileCoordsToKey(e.coords)];
      });
    },

    tileUrl: function (coords) {
      var app = this.app;
      var path = fill(app.config.api.tiles, { layer: 'compounds', z: coords.z, x: coords.x, y: coords.y });
      return path + query(app.filterParams());
    },

    createTile: function (coords, done) {
      var canvas = L.DomUtil.create('canvas', 'leaflet-tile');
      var size = this.getTileSize(), ratio = window.devicePixelRatio || 1;
      canvas.width = size.x * ratio;
      canvas.height = size.y * ratio;
      var key = this._tileCoordsToKey(coords), version = this.version, self = this;
      fetch(this.tileUrl(coords), { credentials: 'same-origin' })
        .then(function (response) {
          if (!response.ok) throw new Error('瓦片加载失败 / tile failed: ' + response.status);
          return response.arrayBuffer();
        })
        .then(function (buffer) {
          if (version === self.version) {
            var layers = T.mvt.decode(new Uint8Array(buffer));
            var layer = layers.compounds || { extent: 4096, features: [] };
            self.data[key] = layer;
            self.draw(canvas, layer, coords.z);
          }
          done(null, canvas);
        })
        .catch(function (error) {
          self.app.message(String(error.message || error), true);
          done(error, canvas);
        });
      return canvas;
    },

    refresh: function () {
      this.version++;
      this.data = {};
      this.redraw();
    },

    draw: function (canvas, layer, zoom) {
      var ctx = canvas.getContext('2d');
      var ratio = canvas.width / 256, scale = canvas.width / layer.extent;
      var styles = this.app.styles, opacity = styles.status_fill_opacity;
      var overdue = styles.overdue;
      ctx.lineJoin = 'round';
      layer.features.forEach(function (f) {
        var p = f.properties, colour = this.app.statusColour(p.status);
        if (p.agg) {
          var side = CELL_PX * ratio, c = f.rings[0];
          ctx.globalAlpha = opacity;
          ctx.fillStyle = colour;
          ctx.fillRect(c[0] * scale - side / 2, c[1] * scale - side / 2, side, side);
        } else if (f.type === 1) {
          var dot = (zoom >= 14 ? 5 : 3) * ratio, q = f.rings[0];
          ctx.globalAlpha = 1;
          ctx.fillStyle = colour;
          ctx.fillRect(q[0] * scale - dot / 2, q[1] * scale - dot / 2, dot, dot);
          if (p.overdue) {
            ctx.lineWidth = ratio;
            ctx.strokeStyle = overdue.colour;
            ctx.strokeRect(q[0] * scale - dot / 2, q[1] * scale - dot / 2, dot, dot);
          }
        } else if (f.type === 3) {
          ctx.beginPath();
          f.rings.forEach(function (ring) {
            ctx.moveTo(ring[0] * scale, ring[1] * scale);
            for (var i = 2; i < ring.length; i += 2) ctx.lineTo(ring[i] * scale, ring[i + 1] * scale);
            ctx.closePath();
          });
          ctx.globalAlpha = opacity;
          ctx.fillStyle = colour;
          ctx.fill('evenodd');
          ctx.globalAlpha = 0.8;
          ctx.lineWidth = (zoom >= 15 ? 1 : 0.6) * ratio;
          ctx.strokeStyle = '#333333';
          ctx.stroke();
          if (p.overdue) {
            ctx.globalAlpha = 1;
            ctx.lineWidth = overdue.weight * ratio;
            ctx.strokeStyle = overdue.colour;
            ctx.stroke();
          }
        }
      }, this);
      ctx.globalAlpha = 1;
    },

    // The feature under a lon/lat in the tiles on screen, or null.
    hit: function (latlng) {
      var zoom = this._tileZoom;
      if (!this._map || zoom === undefined) return null;
      var size = this.getTileSize().x, p = this._map.project(latlng, zoom);
      var tx = Math.floor(p.x / size), ty = Math.floor(p.y / size);
      var layer = this.data[tx + ':' + ty + ':' + zoom];
      if (!layer) return null;
      var s = layer.extent / size, x = (p.x - tx * size) * s, y = (p.y - ty * size) * s;
      for (var i = layer.features.length - 1; i >= 0; i--) {
        var f = layer.features[i], c = f.rings[0];
        if (f.properties.agg || f.type === 1) {
          var half = (f.properties.agg ? CELL_PX / 2 : 4) * s;
          if (Math.abs(c[0] - x) <= half && Math.abs(c[1] - y) <= half) return f;
        } else if (f.type === 3 && inside(f.rings, x, y)) {
          return f;
        }
      }
      return null;
    },

    // What the tiles of the current view hold: {code: status} and aggregated counts.
    drawn: function () {
      var codes = {}, cells = 0, counted = 0, zoom = this._tileZoom;
      Object.keys(this.data).forEach(function (key) {
        if (Number(key.split(':')[2]) !== zoom) return;
        this.data[key].features.forEach(function (f) {
          if (f.properties.agg) { cells++; counted += f.properties.n; }
          else codes[f.properties.code] = f.properties.status;
        });
      }, this);
      return { codes: codes, cells: cells, counted: counted };
    }
  });

  // -- other layers: GeoJSON, limited to the view where they are large -----------------------

  var DataLayer = L.GeoJSON.extend({
    initialize: function (app, options, geojsonOptions) {
      this.app = app;
      this.name = options.layer;
      this.title = options.title || options.layer;
      this.minZoom = options.min_zoom || 0;
      this.useBbox = !!options.bbox;
      this.filtered = !!options.filtered;
      this.seq = 0;
      this.loaded = null;
      L.GeoJSON.prototype.initialize.call(this, null, geojsonOptions);
    },

    onAdd: function (map) {
      L.GeoJSON.prototype.onAdd.call(this, map);
      map.on('moveend', this.load, this);
      // The compounds first: the browser's few connections go to their tiles.
      var self = this;
      this.app.afterFirstRender(function () { self.load(); });
    },

    onRemove: function (map) {
      map.off('moveend', this.load, this);
      this.seq++;
      this.loaded = null;
      this.clearLayers();
      this.app.notice(this.name, null);
      L.GeoJSON.prototype.onRemove.call(this, map);
    },

    params: function () {
      var app = this.app, params = { county: app.county };
      if (this.filtered) params = L.extend(app.filterParams(), params);
      if (this.name === 'overlaps') params.kind = app.config.overlap_kinds;
      return params;
    },

    load: function (force) {
      var map = this._map, app = this.app;
      if (!map) return;
      var zoom = map.getZoom();
      if (zoom < this.minZoom) {
        this.seq++;
        this.loaded = null;
        this.clearLayers();
        app.notice(this.name, this.title + '：放大到 ' + this.minZoom + ' 级以上显示');
        return;
      }
      var params = this.params(), key = JSON.stringify(params), bounds = map.getBounds();
      if (force !== true && this.loaded && this.loaded.key === key) {
        if (!this.useBbox) return;
        if (this.loaded.bounds.contains(bounds) && this.loaded.zoom === Math.round(zoom)) return;
      }
      var wanted = bounds.pad(0.1);
      if (this.useBbox) {
        params.bbox = [wanted.getWest(), wanted.getSouth(), wanted.getEast(), wanted.getNorth()]
          .map(function (v) { return v.toFixed(6); }).join(',');
      }
      var template = this.name === 'overlaps' ? app.config.api.overlaps : app.config.api.layers;
      var url = fill(template, { layer: this.name }) + query(params);
      var seq = ++this.seq, self = this;
      app.getJSON(url).then(function (data) {
        if (seq !== self.seq || !self._map) return;
        self.clearLayers();
        self.addData(data);
        self.loaded = { key: key, bounds: wanted, zoom: Math.round(zoom) };
        var more = data.numberMatched > data.numberReturned;
        app.notice(self.name, more ? self.title + '：范围内 ' + num(data.numberMatched) +
          ' 个，只显示 ' + num(data.numberReturned) + ' 个，请放大' : null);
      }, function () { /* reported by getJSON */ });
    },

    refresh: function () {
      if (this._map) this.load(true);
    }
  });

  // -- parcel-check problem pieces: asked for once, when the layer is first switched on ---------

  var PIN_RADIUS = 5, PIN_REACH = 8; // px

  var ProblemLayer = L.FeatureGroup.extend({
    initialize: function (app, options) {
      L.FeatureGroup.prototype.initialize.call(this, []);
      this.app = app;
      this.name = options.layer;
      this.title = options.title || options.layer;
      this.state = 'idle'; // idle → loading → loaded | error
      this.count = 0;
      this.seq = 0;
      this.pinsBelow = app.config.pins_below_zoom || 16;
      this.shapes = L.geoJSON(null, app.pieceOptions());
      this.pins = L.layerGroup();
      this.addLayer(this.shapes);
    },

    onAdd: function (map) {
      L.FeatureGroup.prototype.onAdd.call(this, map);
      map.on('zoomend', this.showPins, this);
      this.showPins();
      if (this.state === 'idle' || this.state === 'error') this.load();
      else this.report();
    },

    onRemove: function (map) {
      map.off('zoomend', this.showPins, this);
      L.FeatureGroup.prototype.onRemove.call(this, map);
      this.report(false);
    },

    // Pieces of a few m² vanish at low zoom: a pin marks each there.
    showPins: function () {
      if (!this._map) return;
      var want = this._map.getZoom() < this.pinsBelow;
      if (want && !this.hasLayer(this.pins)) this.addLayer(this.pins);
      else if (!want && this.hasLayer(this.pins)) this.removeLayer(this.pins);
    },

    load: function () {
      var app = this.app, self = this, seq = ++this.seq;
      this.state = 'loading';
      this.report();
      app.getJSON(app.config.api.pieces + query({ county: app.county }), true).then(function (layer) {
        if (seq !== self.seq) return;
        var features = layer.features || [];
        self.shapes.clearLayers();
        self.pins.clearLayers();
        self.shapes.addData(features);
        features.forEach(function (f) { self.pins.addLayer(app.piecePin(f)); });
        self.count = features.length;
        self.state = 'loaded';
        self.report();
      }, function (error) {
        if (seq !== self.seq) return;
        self.state = 'error';
        self.error = String(error.message || error);
        self.report();
      });
    },

    // The layer's state, in the panel's notices and beside its legend group.
    report: function (on) {
      var words = null, kind = null;
      on = on === undefined ? !!this._map : on;
      if (on && this.state === 'loading') {
        words = '计算中… / computing…';
        kind = 'busy';
      } else if (on && this.state === 'error') {
        words = '加载失败 / failed: ' + this.error + '（关闭后再打开此图层可重试 / switch it off and on to retry）';
        kind = 'error';
      } else if (on && this.state === 'loaded') {
        words = this.count ? num(this.count) + ' 处 / pieces' : '未发现问题 / none found';
      }
      this.app.notice(this.name, words ? this.title + '：' + words : null, kind);
      var badge = document.querySelector('[data-state-for="' + this.name + '"]');
      if (badge) {
        badge.textContent = words ? '（' + words.split(' / ')[0] + '）' : '';
        badge.className = 'tm-legend-state' + (kind ? ' tm-notice-' + kind : '');
      }
    },

    // The pieces under a point: inside their outline or, zoomed out, within reach of their pin.
    // (Hit-tested here, like the parcels: the canvas of a higher pane takes the mouse.)
    piecesAt: function (latlng) {
      if (!this._map || this.state !== 'loaded') return [];
      var map = this._map, found = [], pins = this.hasLayer(this.pins);
      var here = map.latLngToContainerPoint(latlng);
      this.shapes.eachLayer(function (l) {
        var p = l.feature.properties;
        if (l.getBounds().contains(latlng) && geometryContains(l.feature.geometry, latlng.lng, latlng.lat)) {
          found.push(p);
        } else if (pins && here.distanceTo(map.latLngToContainerPoint([p.lat, p.lon])) <= PIN_REACH) {
          found.push(p);
        }
      });
      return found;
    },

    // The pieces naming a parcel code (once loaded).
    piecesOf: function (code) {
      var found = [];
      this.shapes.eachLayer(function (l) {
        if ((l.feature.properties.parcels || []).indexOf(code) !== -1) found.push(l.feature.properties);
      });
      return found;
    }
  });

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

  App.prototype.idle = function () {
    var tiles = this.layers.compounds;
    return !!this.settled && this.pending === 0 && !this.moving &&
      !(tiles && tiles._map && tiles.isLoading());
  };

  App.prototype.drawn = function () {
    var tiles = this.layers.compounds;
    return tiles && tiles._map ? tiles.drawn() : { codes: {}, cells: 0, counted: 0 };
  };

  App.prototype.makeLayer = function (kind, options) {
    var layer;
    if (kind === 'compounds') {
      var e = this.config.extent;
      // No tile is asked for outside the compounds' extent.
      if (e) options = L.extend({ bounds: L.latLngBounds([[e[1], e[0]], [e[3], e[2]]]).pad(0.05) }, options);
      layer = new CompoundTiles(this, options);
      var self = this;
      layer.on('load', function () {
        if (self.timing.firstRender === null) {
          self.timing.firstRender = window.performance.now();
          document.documentElement.setAttribute('data-first-render', String(Math.round(self.timing.firstRender)));
          setTimeout(function () { self.settle(); }, 0);
        }
      });
    } else if (kind === 'empty') {
      layer = L.layerGroup();
    } else if (kind === 'problems') {
      layer = new ProblemLayer(this, options);
    } else {
      layer = new DataLayer(this, options, this.layerStyle(options.layer));
    }
    this.layers[options.layer || kind] = layer;
    return layer;
  };

  App.prototype.layerStyle = function (name) {
    var st = this.styles, app = this, ctx = st.context;
    function line(s) {
      return { color: s.colour, weight: s.weight, dashArray: s.dash || null, fill: false, interactive: false };
    }
    switch (name) {
      case 'boundary':
        return { pane: 'tm-context', renderer: this.renderers.context, style: line(ctx.boundary), interactive: false };
      case 'townships':
        return { pane: 'tm-context', renderer: this.renderers.context, style: line(ctx.township), interactive: false };
      case 'context':
        return {
          pane: 'tm-context', renderer: this.renderers.context, interactive: false,
          style: function (f) { return line(f.properties.kind === 'river' ? ctx.river : ctx.road); }
        };
      case 'parcels':
        return { pane: 'tm-planned', renderer: this.renderers.planned, style: line(ctx.parcel), interactive: false };
      case 'planned':
        return {
          pane: 'tm-planned', renderer: this.renderers.planned, interactive: false,
          style: function (f) { return line(st.planned[f.properties.kind] || ctx.boundary); }
        };
      case 'overlaps':
        return {
          pane: 'tm-planned', renderer: this.renderers.planned, interactive: false,
          style: function (f) {
            var kind = st.planned[f.properties.kind] || ctx.boundary;
            return {
              color: kind.colour, weight: st.overlap.weight, dashArray: null, fill: true,
              fillColor: app.hatch(kind.colour), fillOpacity: 1, interactive: false
            };
          }
        };
      case 'complaints':
        return {
          pane: 'tm-complaints',
          pointToLayer: function (f, latlng) {
            var s = f.properties.outside_ledger ? st.complaint.outside : st.complaint.inside;
            return L.circleMarker(latlng, {
              pane: 'tm-complaints', renderer: app.renderers.complaints, radius: s.radius,
              color: s.stroke, weight: 1.5, fillColor: s.fill, fillOpacity: 1,
              bubblingMouseEvents: false
            });
          },
          onEachFeature: function (f, marker) { app.bindComplaint(f.properties, marker); }
        };
      default:
        return {};
    }
  };

  // A diagonal hatch in `colour` (a canvas pattern: the canvas renderer takes it as fillColor),
  // so the status colour still shows between the lines.
  App.prototype.hatch = function (colour) {
    this.hatches = this.hatches || {};
    if (!this.hatches[colour]) {
      var size = 7, tile = document.createElement('canvas');
      tile.width = tile.height = size;
      var c = tile.getContext('2d');
      c.strokeStyle = colour;
      c.globalAlpha = this.styles.overlap.fill_opacity + 0.4;
      c.lineWidth = 1.5;
      c.beginPath();
      c.moveTo(-1, size + 1); c.lineTo(size + 1, -1);
      c.moveTo(-1, 1); c.lineTo(1, -1);
      c.moveTo(size - 1, size + 1); c.lineTo(size + 1, size - 1);
      c.stroke();
      this.hatches[colour] = tile.getContext('2d').createPattern(tile, 'repeat');
    }
    return this.hatches[colour];
  };

  App.prototype.bindComplaint = function (p, marker) {
    var app = this, st = this.styles.complaint;
    var tip = el('div', 'tm-tip-body');
    add(tip, el('strong', null, p.outside_ledger ? st.outside.label : st.inside.label),
      el('div', null, p.code + ' · ' + cnDate(p.received_on)));
    marker.bindTooltip(tip, { direction: 'top', offset: [0, -6] });
    var body = el('div', 'tm-popup');
    add(body, el('h4', null, (p.outside_ledger ? st.outside.label : st.inside.label) + ' ' + p.code),
      el('div', 'tm-muted', cnDate(p.received_on) + ' · ' + (p.source || '')),
      el('p', null, p.text));
    if (p.compound_name) {
      add(body, el('div', null, '位于小区：' + p.compound_name + '（' + p.compound_code + '）' +
        (p.outside_ledger ? '，该小区不在化解台账' : '')));
    } else if (p.outside_ledger) {
      add(body, el('div', null, '不在任何小区范围内'));
    }
    if (p.outside_ledger) add(body, el('div', 'tm-flag', '台账外：摸排可能遗漏，需核查'));
    marker.bindPopup(body, { maxWidth: 300 });
    marker.on('mouseover', function () { app.hoverLock = true; app.hideTip(); });
    marker.on('mouseout', function () { app.hoverLock = false; });
  };

  // -- parcel-check problem pieces and parcels: popups with links to the parcel pages ----------

  App.prototype.parcelUrl = function (code) {
    return fill(this.config.api.parcel_page, { code: code }) + query({ county: this.county });
  };

  App.prototype.parcelLink = function (code, words) {
    var link = el('a', 'tm-link tm-parcel-link', words || '查看宗地核查 / open parcel checks');
    link.href = this.parcelUrl(code);
    link.setAttribute('data-code', code);
    return link;
  };

  // A hatch tile per kind (maps.styles.hatch_marks: white marks on the kind's colour), taken by
  // the canvas renderer as fillColor; the legend and the parcel page draw the same in SVG.
  App.prototype.piecePattern = function (kind) {
    this.piecePatterns = this.piecePatterns || {};
    if (!this.piecePatterns[kind]) {
      var st = this.styles, style = st.pieces[kind] || st.pieces.overlap, size = st.pattern_px;
      var tile = document.createElement('canvas');
      tile.width = tile.height = size;
      var c = tile.getContext('2d');
      c.globalAlpha = st.piece_fill_opacity;
      c.fillStyle = style.colour;
      c.fillRect(0, 0, size, size);
      c.globalAlpha = 1;
      c.strokeStyle = c.fillStyle = '#FFFFFF';
      c.lineWidth = 1.2;
      (st.piece_marks[kind] || []).forEach(function (mark) {
        var v = mark[1];
        c.beginPath();
        if (mark[0] === 'line') {
          c.moveTo(v[0], v[1]);
          c.lineTo(v[2], v[3]);
          c.stroke();
        } else {
          c.arc(v[0], v[1], v[2], 0, 2 * Math.PI);
          c.fill();
        }
      });
      this.piecePatterns[kind] = c.createPattern(tile, 'repeat');
    }
    return this.piecePatterns[kind];
  };

  App.prototype.pieceOptions = function () {
    var app = this, st = this.styles;
    return {
      pane: 'tm-problems', renderer: this.renderers.problems, interactive: false,
      style: function (f) {
        var style = st.pieces[f.properties.kind] || st.pieces.overlap;
        return { color: style.colour, weight: st.piece_weight, opacity: 1, fill: true,
          fillColor: app.piecePattern(f.properties.kind), fillOpacity: 1, interactive: false };
      }
    };
  };

  App.prototype.piecePin = function (f) {
    var p = f.properties, style = this.styles.pieces[p.kind] || this.styles.pieces.overlap;
    // a ring, unlike the complaints' solid dots
    return L.circleMarker([p.lat, p.lon], {
      pane: 'tm-problems', renderer: this.renderers.problems, radius: PIN_RADIUS, color: style.colour,
      weight: 3, opacity: 1, fillColor: '#FFFFFF', fillOpacity: 1, interactive: false
    });
  };

  App.prototype.openPieces = function (pieces, latlng) {
    var app = this, body = el('div', 'tm-popup tm-pieces');
    pieces.forEach(function (p) { add(body, app.pieceBody(p)); });
    L.popup({ maxWidth: 320, className: 'tm-piece-popup' }).setLatLng(latlng).setContent(body)
      .openOn(this.map);
  };

  // What a piece is: kind, m², its parcels with links to their pages, the reasons.
  App.prototype.pieceBody = function (p) {
    var app = this, style = this.styles.pieces[p.kind] || {};
    var body = el('div', 'tm-popup tm-piece');
    add(body, el('h4', 'tm-piece-kind', p.label || style.label || p.kind),
      el('div', 'tm-muted', style.label_en || ''));
    var t = el('table', 'tm-table');
    row(t, '面积', m2(p.area_m2));
    if (p.width_m) row(t, '平均宽度', p.width_m + ' 米');
    if (p.depth_m) row(t, '最远超出', p.depth_m + ' 米' + (p.side ? '（' + p.side + '侧）' : ''));
    if (p.planned) row(t, '规划', p.planned + (p.planned_kind ? '（' + p.planned_kind + '）' : ''));
    if (p.compound) row(t, '小区', p.compound);
    row(t, '宗地', (p.parcels || []).join('、'));
    add(body, t);
    if (p.reasons && p.reasons.length) {
      var list = el('ul', 'tm-list tm-piece-reasons');
      p.reasons.forEach(function (reason) { add(list, el('li', null, reason)); });
      add(body, list);
    }
    (p.parcels || []).forEach(function (code) {
      add(body, app.parcelLink(code, '查看宗地核查 / open parcel checks：' + code));
    });
    return body;
  };

  App.prototype.piecesAt = function (latlng) {
    var layer = this.layers.problems;
    return layer ? layer.piecesAt(latlng) : [];
  };

  // The parcels of the parcel layer (drawn from zoom 15) under a point.
  App.prototype.parcelsAt = function (latlng) {
    var layer = this.layers.parcels, found = [];
    if (!layer || !layer._map) return found;
    layer.eachLayer(function (l) {
      if (l.feature && l.getBounds().contains(latlng) &&
          geometryContains(l.feature.geometry, latlng.lng, latlng.lat)) found.push(l.feature);
    });
    return found;
  };

  // One parcel's code and figures, with the link to its check page.
  App.prototype.parcelBody = function (p) {
    var labels = this.config.labels.land_use || {}, box = el('div', 'tm-parcel');
    add(box, add(el('h4', null, '宗地 '), el('span', 'tm-parcel-code', p.code)));
    var t = el('table', 'tm-table');
    row(t, '所属小区', codesOf(p.compound_codes).join('、') || '未关联小区');
    row(t, '地类', p.land_use ? (p.land_use + ' ' + (labels[p.land_use] || '')).trim() : null);
    row(t, '权利性质', p.right_type);
    row(t, '登记面积', m2(p.recorded_area_m2));
    if (p.drawn_area_m2 !== undefined) row(t, '图形面积', m2(p.drawn_area_m2));
    row(t, '欠缴出让金', p.premium_owed ? num(p.premium_owed) + ' 元' : '无');
    var problems = this.layers.problems;
    if (problems && problems.state === 'loaded') {
      var pieces = problems.piecesOf(p.code);
      row(t, '核查问题图斑', pieces.length ? pieces.map(function (x) { return x.label; }).join('、') : '无');
    }
    add(box, t, this.parcelLink(p.code));
    return box;
  };

  App.prototype.openParcels = function (features, latlng) {
    var app = this, body = el('div', 'tm-popup tm-parcels');
    features.forEach(function (f) { add(body, app.parcelBody(f.properties)); });
    this.select(features[0].geometry);
    var popup = L.popup({ maxWidth: 320, className: 'tm-parcel-popup' }).setLatLng(latlng).setContent(body);
    popup.on('remove', function () { if (!app.cardCode) app.select(null); });
    popup.openOn(this.map);
  };

  // A parcel found by the search box: zoom to it, outline it, its popup with the link.
  App.prototype.showParcel = function (f) {
    var b = f.bbox, p = f.properties;
    this.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {
      maxZoom: 18, animate: false, paddingTopLeft: [340, 60], paddingBottomRight: [60, 60]
    });
    this.openParcels([f], L.latLng(p.lat, p.lon));
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

  function row(table, label, value, extra) {
    var tr = add(el('tr'), el('th', null, label));
    var td = el('td', null, value === null || value === undefined || value === '' ? '—' : value);
    if (extra) add(td, ' ', extra);
    add(table, add(tr, td));
    return td;
  }

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
      row(t, '卡点', this.changeText('blockers', ledger.blockers || []));
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

  // -- panels -------------------------------------------------------------------------------------

  App.prototype.ready = function () {
    var app = this, map = this.map;
    var Panel = L.Control.extend({
      onAdd: function () {
        var div = el('div', this.options.className);
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
      }
    });
    this.panel = new Panel({ position: 'topleft', className: 'tm-panel' }).addTo(map).getContainer();
    var cardControl = new Panel({ position: 'topright', className: 'tm-card' }).addTo(map);
    this.card = cardControl.getContainer();
    this.card.hidden = true;
    var close = el('button', 'tm-close', '×');
    close.type = 'button';
    close.title = '关闭';
    close.addEventListener('click', function () { app.closeCard(); });
    this.cardBody = el('div', 'tm-card-body');
    add(this.card, close, this.cardBody);

    var legend = document.getElementById('titlemap-legend');
    if (legend) {
      var legendControl = new Panel({ position: 'bottomright', className: 'tm-legend-box' }).addTo(map);
      legend.hidden = false;
      legendControl.getContainer().appendChild(legend);
      legend.querySelector('h4').addEventListener('click', function () {
        legend.classList.toggle('tm-collapsed');
        app.legendFolded = false;
      });
      this.legend = legend;
    }

    this.buildPanel();
    map.on('mousemove', L.Util.throttle(this.onMove, 40, this), this);
    map.on('mouseout', this.hideTip, this);
    map.on('click', this.onClick, this);
    map.on('movestart zoomstart', function () { app.moving = true; });
    map.on('moveend', function () { app.moving = false; });
    // The compounds come first: the panels' data is asked for once they are drawn.
    this.afterFirstRender(function () {
      app.getJSON(app.config.api.options + query({ county: app.county })).then(function (options) {
        app.options = options;
        app.fillOptions(options);
        app.loadFigures();
      }, function () {});
      app.loadSummary();
    });
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
  };

  App.prototype.resetFilters = function () {
    this.filters = { status: [], blocker: '', lead_department: '', township: '', planned_area: '', overdue: false };
    Array.prototype.forEach.call(this.statusBoxes.querySelectorAll('input'), function (b) { b.checked = false; });
    Object.keys(this.selects).forEach(function (k) { this.selects[k].value = ''; }, this);
    this.overdueBox.checked = false;
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

  // -- entry points called by the folium page ------------------------------------------------------

  T.start = function (map, config) {
    T.app = new App(map, config);
    return T.app;
  };

  T.layer = function (kind, options) {
    return T.app.makeLayer(kind, options);
  };

  T.ready = function () {
    T.app.ready();
  };
})(window);
