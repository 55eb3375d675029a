// layers.js — the compounds drawn from vector tiles, the GeoJSON layers and their styles.
(function (window, document, L, T) {
  'use strict';

  var App = T.App, U = T.util;
  var el = U.el, add = U.add, num = U.num, cnDate = U.cnDate, query = U.query, fill = U.fill;

  // -- compounds: vector tiles drawn on canvas -----------------------------------------------

  var CELL_PX = 4; // geo.tiles.CELL_PX: the side of an aggregated cell

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

  // -- the GeoJSON layers' styles, on their panes' canvas renderers ----------------------------

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

  // Made by App.makeLayer (main.js).
  T.CompoundTiles = CompoundTiles;
  T.DataLayer = DataLayer;
})(window, window.document, window.L, window.titlemap);
