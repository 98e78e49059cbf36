// Keeps the status of running jobs and runs fresh without reloading the page:
// polls /api/live every few seconds while the tab is visible and rewrites only
// the parts that changed, with DOM text nodes (never innerHTML, so job names
// and output stay plain text).
(function () {
  'use strict';
  var FINAL = { succeeded: 1, failed: 1, timed_out: 1, lost: 1, skipped: 1, missed: 1 };
  var POLL_MS = 2500;

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
    (children || []).forEach(function (c) { e.appendChild(typeof c === 'string' ? document.createTextNode(visible(c)) : c); });
    return e;
  }
  // As the server's escapeVisible: invisible and direction-changing characters written as ⟨U+XXXX⟩.
  var INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
  function visible(s) {
    return String(s).replace(INVISIBLE, function (c) {
      if (c === '\n' || c === '\r' || c === '\t') return c;
      var hex = c.codePointAt(0).toString(16).toUpperCase();
      return '\u27E8U+' + ('0000' + hex).slice(-Math.max(4, hex.length)) + '\u27E9';
    });
  }
  // "retrying (2 of 3)" is coloured as retrying, as the server's statusClass.
  function statusClass(s) { var k = String(s || '').replace(/ \(.*\)$/, ''); return /^(queued|running|succeeded|failed|timed_out|lost|skipped|missed|retrying)$/.test(k) ? 'st-' + k : 'st-unknown'; }
  function statusText(s) { return s ? String(s).replace(/_/g, ' ') : 'never run'; }
  function badge(s) { return el('span', { class: 'badge ' + statusClass(s) }, [statusText(s)]); }
  function utcText(iso) { return iso ? iso.slice(0, 19).replace('T', ' ') + ' UTC' : ''; }
  function relative(iso) {
    if (!iso) return '—';
    var diff = Math.round((new Date(iso).getTime() - Date.now()) / 1000), abs = Math.abs(diff);
    if (abs < 2) return 'just now';
    var units = [[31536000, 'y', 31536000], [5184000, 'mo', 2592000], [86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']];
    for (var i = 0; i < units.length; i++) if (abs >= units[i][0]) {
      var n = Math.floor(abs / (units[i][2] || units[i][0]));
      return diff < 0 ? n + ' ' + units[i][1] + ' ago' : 'in ' + n + ' ' + units[i][1];
    }
    return 'just now';
  }
  function timeEl(iso) { return iso ? el('time', { datetime: iso, title: utcText(iso) }, [relative(iso)]) : el('span', { class: 'muted' }, ['—']); }
  function duration(sec) {
    if (sec === null || sec === undefined) return '—';
    var ms = sec * 1000;
    if (ms < 1000) return Math.round(ms) + ' ms';
    var s = ms / 1000;
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return Math.floor(s % 60) === 0 ? m + ' min' : m + ' min ' + Math.floor(s % 60) + ' s';
    return m % 60 === 0 ? Math.floor(m / 60) + ' h' : Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }
  // As the server's runDurationText: run_time, else from start to finish (a lost run).
  function runDuration(r) {
    return r.run_time != null ? duration(r.run_time) : r.started_at && r.completed_at ? duration((new Date(r.completed_at) - new Date(r.started_at)) / 1000) : '—';
  }
  function setBadge(holder, status) {
    if (!holder || holder.getAttribute('data-status') === (status || '')) return;
    holder.setAttribute('data-status', status || '');
    var old = holder.querySelector('.badge');
    if (old) old.replaceWith(badge(status)); else holder.appendChild(badge(status));
  }
  function get(url) {
    return fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } }).then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    });
  }

  // A next run more than this far in the past is shown late, as the server does.
  var LATE_MS = 60000;
  function nextCell(cell, j) {
    if (!cell) return;
    if (j.ended_at) {
      if (!cell.querySelector('.ended')) cell.replaceChildren(el('span', { class: 'muted ended' }, ['ended']));
      return;
    }
    if (j.next_run && !cell.querySelector('time[datetime="' + j.next_run + '"]')) cell.replaceChildren(timeEl(j.next_run));
    markLate(cell);
  }
  function markLate(cell) {
    var t = cell.querySelector('time[datetime]');
    var late = !!t && new Date(t.getAttribute('datetime')).getTime() < Date.now() - LATE_MS;
    if (late === cell.classList.contains('late')) return;
    cell.classList.toggle('late', late);
    if (late) cell.setAttribute('title', 'late: no injector has claimed it yet'); else cell.removeAttribute('title');
  }
  // As the server's historyText: the dots in words for a screen reader.
  function historyText(runs) {
    if (!runs.length) return 'no runs yet';
    return (runs.length === 1 ? 'last run' : 'last ' + runs.length + ' runs, newest last') + ': ' + runs.map(function (r) { return statusText(r.status); }).join(', ');
  }
  function dots(runs) {
    var ordered = runs.slice().reverse();
    return el('span', { class: 'dots', role: 'img', 'aria-label': historyText(ordered) }, ordered.map(function (r) {
      return el('a', { class: 'dot ' + statusClass(r.status), href: '/run/' + r.id, tabindex: '-1', 'aria-hidden': 'true', title: statusText(r.status) + ' · ' + utcText(r.started_at || r.queued_at) });
    }));
  }
  function refreshIndex(rows) {
    var ids = rows.map(function (r) { return r.getAttribute('data-job-id'); });
    return get('/api/live?runs=10&job=' + ids.join(',')).then(function (body) {
      rows.forEach(function (row) {
        var j = body.data.jobs[row.getAttribute('data-job-id')];
        if (!j) return;
        setBadge(row, j.status);
        var latest = j.runs[0];
        var start = latest ? (latest.started_at || latest.queued_at) : j.last_run_start;
        var cell = row.querySelector('.c-last');
        if (cell && start && !cell.querySelector('time[datetime="' + start + '"]')) cell.replaceChildren(timeEl(start));
        nextCell(row.querySelector('.c-next'), j);
        var hist = row.querySelector('.c-hist');
        var shown = Array.prototype.map.call(row.querySelectorAll('.c-hist .dot'), function (d) { return d.getAttribute('href') + d.className; }).join();
        var fresh = j.runs.slice().reverse().map(function (r) { return '/run/' + r.id + 'dot ' + statusClass(r.status); }).join();
        if (hist && shown !== fresh) hist.replaceChildren(dots(j.runs));
      });
    });
  }

  function runRow(r) {
    return el('tr', { 'data-run-id': r.id, 'data-status': r.status }, [
      el('td', { class: 'c-status' }, [badge(r.status)]),
      el('td', null, [timeEl(r.started_at || r.queued_at)]),
      el('td', { class: 'c-hide-narrow' }, [runDuration(r)]),
      el('td', { class: 'c-hide-narrow' }, [r.return_code === null ? '—' : String(r.return_code)]),
      el('td', { class: 'c-hide-narrow' }, [r.host || '—']),
      el('td', null, r.attempt > 1 || r.triggered_by === 'retry'
        ? [r.triggered_by + ' ', el('span', { class: 'muted' }, ['(attempt ' + (r.attempts != null && r.attempts >= r.attempt ? r.attempt + ' of ' + r.attempts : r.attempt) + ')'])]
        : [r.triggered_by]),
      el('td', { class: 'reason' }, [r.reason || '']),
      el('td', null, [el('a', { class: 'mono', href: '/run/' + r.id }, [r.id.slice(0, 8)])]),
    ]);
  }

  function refreshJob(table) {
    var id = table.getAttribute('data-job-id');
    return get('/api/live?runs=50&job=' + id).then(function (body) {
      var j = body.data.jobs[id];
      if (!j) return;
      setBadge(document.querySelector('.jobstatus'), j.status);
      // A filtered or older page of runs stays as asked; only the newest runs are live.
      if (table.getAttribute('data-frozen')) return;
      var tbody = table.querySelector('tbody');
      var shown = Array.prototype.map.call(tbody.querySelectorAll('tr[data-run-id]'), function (tr) { return tr.getAttribute('data-run-id') + ':' + tr.getAttribute('data-status'); }).join(',');
      var fresh = j.runs.map(function (r) { return r.id + ':' + r.status; }).join(',');
      if (shown !== fresh && j.runs.length) {
        tbody.replaceChildren.apply(tbody, j.runs.map(runRow));
        // A run exists now: the "queued" notes of the Run now click are done.
        document.querySelectorAll('.notice, [data-run-now]').forEach(function (n) { n.remove(); });
      }
    });
  }

  function refreshRun(holder) {
    var id = holder.getAttribute('data-run-id');
    if (FINAL[holder.getAttribute('data-status')]) return Promise.resolve(false);
    return get('/api/live?run=' + id).then(function (body) {
      var r = body.data.runs[id];
      if (!r) return true;
      setBadge(holder, r.status);
      var fields = { host: r.host || '—', started_at: utcText(r.started_at) || '—', completed_at: utcText(r.completed_at) || '—', run_time: r.status === 'running' ? null : runDuration(r), return_code: r.return_code === null ? '—' : String(r.return_code), reason: r.reason || '—' };
      for (var k in fields) { if (fields[k] === null) continue; var dd = document.querySelector('[data-field="' + k + '"]'); var v = visible(fields[k]); if (dd && dd.textContent !== v) dd.textContent = v; }
      var out = document.getElementById('output');
      if (out && r.output_tail && (shownTail !== r.output_tail || out.getAttribute('data-stderr-lines') !== (r.stderr_lines || ''))) {
        renderOutput(out, r.output_tail, r.stderr_lines || '');
        var none = document.getElementById('no-output'); if (none) none.remove();
      }
      var tbody = document.querySelector('table.events tbody');
      if (tbody && r.events && r.events.length && tbody.querySelectorAll('tr').length !== r.events.length) {
        tbody.replaceChildren.apply(tbody, r.events.map(function (e) {
          var st = e.type === 'starting' ? 'running' : e.type === 'finished' ? (e.return_code === 0 ? 'succeeded' : 'failed') : e.type;
          return el('tr', null, [el('td', null, [utcText(e.datetime)]), el('td', null, [el('span', { class: 'badge ' + statusClass(st) + (r.status === 'running' ? '' : ' still') }, [e.type])]), el('td', null, [e.host || '—']), el('td', null, [e.return_code === null ? '—' : String(e.return_code)])]);
        }));
      }
      if (r.status !== 'running') document.querySelectorAll('table.events .badge').forEach(function (b) { b.classList.add('still'); });
      return !FINAL[r.status];
    });
  }

  // The output as lines, stderr's marked: as the server renders it (src/web/run-output.ts).
  function errTest(ranges) {
    if (!/^[1-9]\d{0,8}(-[1-9]\d{0,8})?(,[1-9]\d{0,8}(-[1-9]\d{0,8})?)*$/.test(ranges)) return function () { return false; };
    var rs = ranges.split(',').map(function (p) { var ab = p.split('-'); return [Number(ab[0]), Number(ab[1] || ab[0])]; });
    return function (n) { return rs.some(function (r) { return n >= r[0] && n <= r[1]; }); };
  }
  var shownTail = null;
  function renderOutput(out, tail, ranges) {
    var lines = tail.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    var isErr = errTest(ranges);
    var atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    out.replaceChildren.apply(out, lines.map(function (l, i) { return el('span', { class: 'line' + (isErr(lines.length - i) ? ' err' : '') }, [l + '\n']); }));
    shownTail = tail;
    out.setAttribute('data-stderr-lines', ranges);
    search();
    if (atEnd) out.scrollTop = out.scrollHeight;
  }
  // Search within the output: only the lines that contain the text, counted.
  function search() {
    var out = document.getElementById('output'), box = document.getElementById('output-search'), found = document.getElementById('output-found');
    if (!out || !box) return;
    var text = box.value.toLowerCase(), hits = 0;
    out.querySelectorAll('.line').forEach(function (l) { var hit = text !== '' && l.textContent.toLowerCase().indexOf(text) !== -1; l.classList.toggle('hit', hit); if (hit) hits++; });
    out.classList.toggle('searching', text !== '');
    if (found) { found.hidden = text === ''; found.textContent = hits === 1 ? '1 line matches' : hits + ' lines match'; }
  }
  // "running for 1 min 23 s", kept counting.
  function runningFor() {
    document.querySelectorAll('[data-running-since]').forEach(function (s) { var t = duration((Date.now() - new Date(s.getAttribute('data-running-since')).getTime()) / 1000); if (s.textContent !== t) s.textContent = t; });
  }

  // A page section the server renders (data-live-html): fetched again with the page's own
  // address and swapped in whole, as the server escaped it (the failures by job).
  function refreshHtml(section) {
    return fetch(location.href, { credentials: 'same-origin', headers: { Accept: 'text/html' } }).then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, 'text/html');
      ['failure-groups', 'failing-jobs-count', 'overdue', 'failing'].forEach(function (id) {
        var fresh = doc.getElementById(id), old = document.getElementById(id);
        if (fresh && old && !old.contains(document.activeElement)) old.replaceWith(document.importNode(fresh, true));
      });
    });
  }

  function tick() {
    var work;
    var liveHtml = document.querySelector('[data-live-html]');
    var runHolder = document.querySelector('.runstatus[data-run-id]');
    var runsTable = document.getElementById('runs');
    var rows = Array.prototype.slice.call(document.querySelectorAll('table.jobs tr[data-job-id]'));
    if (liveHtml) work = refreshHtml(liveHtml);
    else if (runHolder) work = refreshRun(runHolder);
    else if (runsTable) work = refreshJob(runsTable);
    else if (rows.length) work = refreshIndex(rows);
    else return;
    work.catch(function () { /* offline or signed out: try again next tick */ }).then(schedule);
  }
  function schedule() { setTimeout(function () { if (document.hidden) schedule(); else tick(); }, POLL_MS); }
  function ageTimes() {
    document.querySelectorAll('time[datetime]').forEach(function (t) { var txt = relative(t.getAttribute('datetime')); if (t.textContent !== txt) t.textContent = txt; });
    document.querySelectorAll('table.jobs td.c-next').forEach(markLate);
  }
  // "Copy" buttons: the text of the element named by data-copy, to the clipboard
  // (or selected, where the page is not a secure context and the clipboard is closed).
  function copy(button) {
    var target = document.getElementById(button.getAttribute('data-copy'));
    if (!target) return;
    var done = function () { button.textContent = 'Copied'; setTimeout(function () { button.textContent = 'Copy'; }, 2000); };
    var select = function () { var r = document.createRange(); r.selectNodeContents(target); var s = window.getSelection(); s.removeAllRanges(); s.addRange(r); button.textContent = 'Selected: press Ctrl+C'; };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(target.textContent).then(done, select);
    else select();
  }
  document.addEventListener('click', function (e) { var b = e.target.closest && e.target.closest('button[data-copy]'); if (b) copy(b); });
  document.addEventListener('DOMContentLoaded', function () {
    schedule();
    setInterval(ageTimes, 10000);
    setInterval(runningFor, 1000);
    // The output opens at its end: the last lines are what an operator came for.
    var out = document.getElementById('output');
    if (out) out.scrollTop = out.scrollHeight;
    var box = document.getElementById('output-search');
    if (box) box.addEventListener('input', search);
  });
})();
