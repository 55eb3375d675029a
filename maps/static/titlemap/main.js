// main.js — start-up: the layers the page asks for, the panels' controls, the entry points.
(function (window, document, L, T) {
  'use strict';

  var App = T.App, CompoundTiles = T.CompoundTiles, DataLayer = T.DataLayer,
    ProblemLayer = T.ProblemLayer, U = T.util;
  var el = U.el, add = U.add, query = U.query;

  // -- layers, as the folium page asks for them ------------------------------------------------

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

    // Metres only: county staff measure in metres (Leaflet's default adds feet and miles).
    L.control.scale({ imperial: false, position: 'bottomleft' }).addTo(map);
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
})(window, window.document, window.L, window.titlemap);
