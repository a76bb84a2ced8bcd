/**
 * The console's script and style, served as files (/admin/static/…) so the Content-Security-
 * Policy can forbid inline code. Plain JavaScript, run as it is: no build step.
 *
 * The script does two things the server-rendered pages cannot: confirm dangerous forms
 * (`data-confirm`) and keep the live view (#live) fed from GET /admin/live, a stream of
 * server-sent events. Publication data is put in the page with textContent only, never as
 * markup: it is whatever a client published.
 *
 * Embedded with String.raw: no backtick and no dollar-brace in it.
 */
export const ADMIN_SCRIPT = String.raw`
(function () {
  'use strict';
  var KEEP = 200; // live publications kept on the page

  function $(id) { return document.getElementById(id); }

  function confirmForms() {
    var forms = document.querySelectorAll('form[data-confirm]');
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener('submit', function (ev) {
        if (!window.confirm(form.getAttribute('data-confirm'))) ev.preventDefault();
      });
    });
  }

  function setState(state, text) {
    var el = $('live-state');
    el.setAttribute('data-state', state);
    el.textContent = text;
  }

  function showPublication(list, pub) {
    if (list.querySelector('li[data-offset="' + Number(pub.offset) + '"]')) return;
    var li = document.createElement('li');
    li.setAttribute('data-offset', String(Number(pub.offset)));
    var offset = document.createElement('span');
    offset.className = 'offset';
    offset.textContent = '#' + Number(pub.offset);
    var data = document.createElement('pre');
    data.textContent = JSON.stringify(pub.data, null, 2);
    li.appendChild(offset);
    li.appendChild(data);
    list.insertBefore(li, list.firstChild);
    while (list.children.length > KEEP) list.removeChild(list.lastChild);
    var top = $('top-offset');
    if (top && Number(pub.offset) > Number(top.textContent)) top.textContent = String(Number(pub.offset));
  }

  function onPub(list, ev) {
    ev.data.split('\n').forEach(function (line) {
      var frame;
      try { frame = JSON.parse(line); } catch (e) { return; }
      var pub = frame && frame.push && frame.push.pub;
      if (pub) showPublication(list, pub);
    });
  }

  function live(list) {
    var channel = list.getAttribute('data-channel');
    var source = new EventSource('/admin/live?channel=' + encodeURIComponent(channel));
    source.addEventListener('position', function (ev) {
      var pos = JSON.parse(ev.data);
      setState('live', 'Live from offset ' + Number(pos.offset) + '.');
    });
    source.addEventListener('pub', function (ev) { onPub(list, ev); });
    source.addEventListener('gap', function () {
      source.close();
      setState('reconnecting', 'Missed publications; reopening the stream…');
      setTimeout(function () { live(list); }, 1000);
    });
    source.onerror = function () { setState('reconnecting', 'Stream interrupted; reconnecting…'); };
  }

  function start() {
    confirmForms();
    var list = $('live');
    if (list && window.EventSource) live(list);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
`;

export const ADMIN_STYLE = `
:root { font-family: system-ui, sans-serif; line-height: 1.4; --line: #8884; --accent: #2563eb; }
body { margin: 0; }
.top { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.2rem; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
.top nav { display: flex; gap: 1rem; }
.top nav a[aria-current] { font-weight: 600; text-decoration: none; border-bottom: 2px solid var(--accent); }
.logout { margin-left: auto; }
main { padding: 0 1.2rem 2rem; max-width: 80rem; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 16rem; overflow: auto; font-size: .85rem; }
.count { font-size: .8em; opacity: .7; }
.hint, .empty { opacity: .75; }
.banner { padding: .5rem .8rem; border-radius: .3rem; }
.banner.error { background: #dc262622; }
.banner.notice { background: #16a34a22; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1.5rem; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
.facts dd { margin: 0; font-family: ui-monospace, monospace; }
form.login, form.publish, form.search { display: flex; flex-direction: column; gap: .4rem; max-width: 28rem; }
form.search { flex-direction: row; align-items: center; flex-wrap: wrap; }
form.danger button { background: #dc2626; color: #fff; border: 0; padding: .35rem .8rem; border-radius: .3rem; }
textarea { font-family: ui-monospace, monospace; }
ol.pubs { list-style: none; padding: 0; max-height: 28rem; overflow: auto; }
ol.pubs li { display: flex; gap: .6rem; border-bottom: 1px solid var(--line); padding: .25rem 0; }
.offset { font-family: ui-monospace, monospace; opacity: .7; }
ul.inline { display: flex; gap: 1rem; list-style: none; padding: 0; flex-wrap: wrap; }
`;
