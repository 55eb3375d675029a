/*
 * titlemap.mvt — a small decoder of Mapbox Vector Tiles (spec 2.1, protobuf), no dependencies.
 *
 * titlemap.mvt.decode(Uint8Array) → { layerName: { extent, features: [
 *     { id, type (1 point, 2 line, 3 polygon), properties: {…}, rings: [[x0, y0, x1, y1, …], …] }
 * ] } }
 * Coordinates stay in tile units (0…extent, y down). Points are one-vertex rings.
 */
(function (root) {
  'use strict';

  var utf8 = new TextDecoder('utf-8');

  function Reader(bytes) {
    this.buf = bytes;
    this.pos = 0;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  Reader.prototype.varint = function () {
    var buf = this.buf, value = 0, factor = 1, byte;
    do {
      byte = buf[this.pos++];
      value += (byte & 0x7f) * factor;
      factor *= 128;
    } while (byte >= 0x80);
    return value;
  };

  Reader.prototype.bytes = function () {
    var length = this.varint(), start = this.pos;
    this.pos += length;
    return this.buf.subarray(start, start + length);
  };

  Reader.prototype.skip = function (wire) {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.pos += this.varint();
    else if (wire === 5) this.pos += 4;
    else throw new Error('mvt: unknown wire type ' + wire);
  };

  // Calls fn(field, wire, reader) for every field of the message in `bytes`.
  function fields(bytes, fn) {
    var r = new Reader(bytes);
    while (r.pos < bytes.length) {
      var key = r.varint();
      fn(key >>> 3, key & 7, r);
    }
  }

  function packed(r) {
    var bytes = r.bytes(), inner = new Reader(bytes), out = [];
    while (inner.pos < bytes.length) out.push(inner.varint());
    return out;
  }

  function zigzag(n) {
    return n % 2 === 1 ? -(n + 1) / 2 : n / 2;
  }

  function value(bytes) {
    var result = null;
    fields(bytes, function (field, wire, r) {
      if (field === 1) result = utf8.decode(r.bytes());
      else if (field === 2) { result = r.view.getFloat32(r.pos, true); r.pos += 4; }
      else if (field === 3) { result = r.view.getFloat64(r.pos, true); r.pos += 8; }
      else if (field === 4 || field === 5) result = r.varint();
      else if (field === 6) result = zigzag(r.varint());
      else if (field === 7) result = r.varint() !== 0;
      else r.skip(wire);
    });
    return result;
  }

  function geometry(commands) {
    var rings = [], ring = null, x = 0, y = 0, i = 0;
    while (i < commands.length) {
      var command = commands[i++], id = command & 7, count = command >>> 3;
      if (id === 1 || id === 2) {
        for (var k = 0; k < count; k++) {
          x += zigzag(commands[i++]);
          y += zigzag(commands[i++]);
          if (id === 1) { ring = [x, y]; rings.push(ring); } else ring.push(x, y);
        }
      }
      // 7 (ClosePath) has no parameters: rings are closed implicitly when drawn.
    }
    return rings;
  }

  function layer(bytes) {
    var name = '', extent = 4096, keys = [], values = [], raw = [];
    fields(bytes, function (field, wire, r) {
      if (field === 1) name = utf8.decode(r.bytes());
      else if (field === 2) raw.push(r.bytes());
      else if (field === 3) keys.push(utf8.decode(r.bytes()));
      else if (field === 4) values.push(value(r.bytes()));
      else if (field === 5) extent = r.varint();
      else r.skip(wire);
    });
    var features = raw.map(function (bytes) {
      var feature = { id: null, type: 0, properties: {}, rings: [] }, tags = [], commands = [];
      fields(bytes, function (field, wire, r) {
        if (field === 1) feature.id = r.varint();
        else if (field === 2) tags = packed(r);
        else if (field === 3) feature.type = r.varint();
        else if (field === 4) commands = packed(r);
        else r.skip(wire);
      });
      for (var t = 0; t + 1 < tags.length; t += 2) {
        feature.properties[keys[tags[t]]] = values[tags[t + 1]];
      }
      feature.rings = geometry(commands);
      return feature;
    });
    return { name: name, extent: extent, features: features };
  }

  function decode(bytes) {
    var layers = {};
    if (!bytes || !bytes.length) return layers;
    fields(bytes, function (field, wire, r) {
      if (field === 3) {
        var l = layer(r.bytes());
        layers[l.name] = l;
      } else r.skip(wire);
    });
    return layers;
  }

  root.titlemap = root.titlemap || {};
  root.titlemap.mvt = { decode: decode };
})(window);
