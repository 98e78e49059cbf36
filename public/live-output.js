// The run page's live output (GET /api/runs/<id>/live, Server-Sent Events
// read with fetch so a 503 "broker unavailable" can be shown). Text only:
// output is appended as text nodes, never as HTML. The shown text is kept
// under MAX_CHARS (oldest dropped), so a long run cannot fill the page.
(function () {
  'use strict';
  var MAX_CHARS = 512 * 1024;
  var section = document.getElementById('live');
  if (!section || !window.fetch || !window.TextDecoder) return;
  var out = document.getElementById('live-output');
  var state = document.getElementById('live-state');
  var url = section.getAttribute('data-live-url');
  var ended = false;

  // As live.js and the server: invisible and direction-changing characters written as ⟨U+XXXX⟩.
  var INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
  function visible(s) {
    return String(s).replace(INVISIBLE, function (c) {
      if (c === '\n' || c === '\t') return c;
      var hex = c.codePointAt(0).toString(16).toUpperCase();
      return '\u27E8U+' + ('0000' + hex).slice(-Math.max(4, hex.length)) + '\u27E9';
    });
  }
  function say(text) { state.textContent = text; }
  function append(text) {
    out.appendChild(document.createTextNode(visible(text)));
    var total = out.textContent.length;
    while (total > MAX_CHARS && out.firstChild) {
      total -= out.firstChild.textContent.length;
      out.removeChild(out.firstChild);
    }
    out.scrollTop = out.scrollHeight;
  }
  function onEvent(type, data) {
    var d;
    try { d = JSON.parse(data); } catch (e) { return; }
    if (type === 'ready') say('Live: output appears as the job writes it (from when this page opened).');
    else if (type === 'output' && typeof d.text === 'string') append(d.text);
    else if (type === 'end') { ended = true; say('The run ended: ' + String(d.status).replace(/_/g, ' ') + '.'); }
    else if (type === 'unavailable') say('Live output unavailable: ' + d.message + '. Trying again…');
  }
  function connect() {
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'text/event-stream' } }).then(function (res) {
      if (!res.ok) {
        return res.json().then(function (b) { return b && b.error && b.error.message; }, function () { return null; }).then(function (m) {
          // 503 (the broker is away, or too many viewers) may pass: try again; anything else will not.
          if (res.status !== 503) ended = true;
          say('Live output unavailable: ' + (m || ('HTTP ' + res.status)) + (ended ? '.' : '. Trying again…'));
        });
      }
      var reader = res.body.getReader();
      var decoder = new TextDecoder();
      var buf = '';
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) return;
          buf += decoder.decode(r.value, { stream: true });
          var i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            var block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            var type = 'message';
            var data = '';
            block.split('\n').forEach(function (line) {
              if (line.indexOf('event: ') === 0) type = line.slice(7);
              else if (line.indexOf('data: ') === 0) data += line.slice(6);
            });
            if (data) onEvent(type, data);
          }
          return pump();
        });
      }
      return pump();
    }).catch(function () { /* network: reconnect below */ }).then(function () {
      if (!ended) setTimeout(connect, 5000);
    });
  }
  connect();
})();
