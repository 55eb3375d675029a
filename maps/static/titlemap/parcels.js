// parcels.js — the parcel-check problem pieces (layer, hatches, popups) and parcels' popups.
(function (window, document, L, T) {
  'use strict';

  var App = T.App, U = T.util;
  var el = U.el, add = U.add, num = U.num, query = U.query, fill = U.fill, codesOf = U.codesOf,
    m2 = U.m2, row = U.row;

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

  // Made by App.makeLayer (main.js).
  T.ProblemLayer = ProblemLayer;
})(window, window.document, window.L, window.titlemap);
