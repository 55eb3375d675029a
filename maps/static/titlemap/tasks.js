// tasks.js — (being written) its section of the compound card, through titlemap.cardSections.
(function (window, document, L, T) {
  'use strict';
})(window, window.document, window.L, window.titlemap);
