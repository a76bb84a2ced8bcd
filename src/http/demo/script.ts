/**
 * The demo page's browser script (plain JavaScript, run as it is: no build step). It uses
 * the official centrifuge SDK, served by the gateway at /demo/centrifuge.js as the global
 * `Centrifuge`.
 *
 * Both panels keep a channel's publications by offset and render from them in offset
 * order: the chat shows the last messages; the to-do list is a fold over every event of
 * its channel (add, toggle), so any page that loads the history rebuilds the same list.
 * Live publications and history pages may overlap; keying by offset makes that harmless.
 *
 * The chat has two conversations, each a channel. Tabs carry unread badges from the user's
 * read cursors (RPC tidings.unread / tidings.read, docs/sync.md): reading a conversation in
 * one window clears its badge in every other window of the same user, through the
 * `tidings.read` message the server pushes to them. Authors edit their messages with RPC
 * tidings.edit; an edit is a publication of its own, folded into the message it names.
 *
 * This text is embedded in the HTML as it is (String.raw): it must contain no backtick,
 * no dollar-brace and no closing script tag.
 */
export const DEMO_SCRIPT = String.raw`
(function () {
  'use strict';

  var NAME_RE = /^[\p{L}\p{N}_.-]{1,32}$/u;
  var ROOM_RE = /^[A-Za-z0-9_-]{1,32}$/;
  var CHAT_TAIL = 200;     // chat messages loaded from history on start
  var HISTORY_PAGE = 1000; // to-do events per history call (the server caps it anyway)

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function plural(n, one, many) { return n + ' ' + (n === 1 ? one : many); }
  function errText(err) {
    if (!err) return 'unknown error';
    if (err.message) return err.code ? err.message + ' (code ' + err.code + ')' : err.message;
    return String(err);
  }
  function timeOf(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  var params = new URLSearchParams(location.search);
  var room = ROOM_RE.test(params.get('room') || '') ? params.get('room') : 'lobby';
  var channels = { chat: 'demo.' + room + '.chat', random: 'demo.' + room + '.random', todos: 'demo.' + room + '.todos' };
  var wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/connection/websocket';

  $('room').textContent = room;
  $('chat-channel').textContent = channels.chat;
  $('todo-channel').textContent = channels.todos;

  // ---- banners ----------------------------------------------------------------------

  function showAlert(parts) {
    var box = $('alert-text');
    box.textContent = '';
    parts.forEach(function (part) {
      box.appendChild(typeof part === 'string' ? document.createTextNode(part) : part);
    });
    $('alert').hidden = false;
  }
  function code(text) { return el('code', '', text); }
  $('alert-close').addEventListener('click', function () { $('alert').hidden = true; });
  $('notice-close').addEventListener('click', function () { $('notice').hidden = true; });

  // After a reconnect each subscription reports what it recovered; the notice adds them up.
  var LABELS = { chat: 'chat', random: 'random', todos: 'to-do' };
  var round = null;
  function reportRecovered(key, count, fromHistory) {
    if (!round) round = { counts: {}, fromHistory: false };
    round.counts[key] = count;
    round.fromHistory = round.fromHistory || fromHistory;
    var total = 0;
    var detail = [];
    Object.keys(round.counts).forEach(function (k) {
      total += round.counts[k];
      if (round.counts[k] > 0) detail.push(round.counts[k] + ' ' + LABELS[k]);
    });
    var text = 'Back online: recovered ' + plural(total, 'message', 'messages') + (detail.length ? ' (' + detail.join(', ') + ')' : '');
    text += round.fromHistory ? ', reloaded from history.' : ', in order, none twice.';
    $('notice-text').textContent = text;
    $('notice').hidden = false;
  }

  // ---- a channel's publications, by offset -------------------------------------------

  function Stream(key, mode, render) {
    this.key = key;
    this.mode = mode;       // 'tail': the last CHAT_TAIL; 'all': from offset 1
    this.render = render;
    this.events = new Map();
    this.loaded = false;
    this.queued = false;
    this.sub = null;
    this.onLive = null;     // called with the offset of each live publication
  }
  Stream.prototype.maxOffset = function () {
    var max = 0;
    this.events.forEach(function (_e, offset) { if (offset > max) max = offset; });
    return max;
  };
  Stream.prototype.add = function (pub) {
    var offset = Number(pub.offset);
    if (!offset || this.events.has(offset)) return;
    var data = pub.data && typeof pub.data === 'object' ? pub.data : {};
    var user = pub.info && pub.info.user ? pub.info.user : (typeof data.user === 'string' ? data.user : 'server');
    var tags = pub.tags || {};
    // An edit or delete event names the offset it changes (docs/sync.md).
    var op = tags.tidings_op === 'edit' || tags.tidings_op === 'delete' ? tags.tidings_op : '';
    this.events.set(offset, { offset: offset, data: data, user: user, op: op, of: Number(tags.tidings_of) || 0 });
    this.schedule();
  };
  Stream.prototype.ordered = function () {
    return Array.from(this.events.values()).sort(function (a, b) { return a.offset - b.offset; });
  };
  Stream.prototype.schedule = function () {
    if (!this.loaded || this.queued) return;
    this.queued = true;
    var self = this;
    queueMicrotask(function () { self.queued = false; self.render(self.ordered()); });
  };
  // Loads the history (merged with whatever arrived live meanwhile); returns how many
  // publications it added above the newest one held before.
  Stream.prototype.load = async function () {
    var before = this.maxOffset();
    var pubs = [];
    if (this.mode === 'tail') {
      pubs = (await this.sub.history({ limit: CHAT_TAIL, reverse: true })).publications;
    } else {
      var since = { offset: 0, epoch: '' };
      for (;;) {
        var page = await this.sub.history({ limit: HISTORY_PAGE, since: since });
        pubs = pubs.concat(page.publications);
        var n = page.publications.length;
        var last = n ? Number(page.publications[n - 1].offset) : since.offset;
        if (n === 0 || last >= Number(page.offset)) break;
        since = { offset: last, epoch: page.epoch };
      }
    }
    var self = this;
    var added = 0;
    pubs.forEach(function (p) {
      if (Number(p.offset) > before && !self.events.has(Number(p.offset))) added++;
      self.add(p);
    });
    this.loaded = true;
    this.schedule();
    return before > 0 ? added : 0;
  };
  Stream.prototype.subscribe = function (client, channel) {
    var self = this;
    var sub = client.newSubscription(channel);
    this.sub = sub;
    var tally = null;
    sub.on('subscribed', function (ctx) {
      updateControls();
      if (ctx.wasRecovering && ctx.recovered) {
        // The SDK delivers the recovered publications right after this event, in the
        // same task: count them, and report once they are all in.
        var mine = { n: 0 };
        tally = mine;
        setTimeout(function () {
          if (tally === mine) tally = null;
          reportRecovered(self.key, mine.n, false);
        }, 0);
        return;
      }
      var resumed = ctx.wasRecovering; // the gap could not be recovered: rebuild from history
      self.load().then(function (added) {
        if (resumed) reportRecovered(self.key, added, true);
      }, function (err) {
        showAlert(['Could not load the history of ', code(channel), ': ' + errText(err)]);
      });
    });
    sub.on('publication', function (ctx) {
      if (tally) tally.n++;
      self.add(ctx);
      if (self.onLive) self.onLive(Number(ctx.offset));
    });
    sub.on('subscribing', updateControls);
    sub.on('unsubscribed', function (ctx) {
      updateControls();
      if (ctx.code !== 0) showAlert(['Unsubscribed from ', code(channel), ': ' + ctx.reason + ' (code ' + ctx.code + ')']);
    });
    sub.on('error', function (ctx) {
      showAlert(['Subscription to ', code(channel), ' failed: ' + errText(ctx.error)]);
    });
    sub.subscribe();
    return sub;
  };

  // ---- chat -------------------------------------------------------------------------

  var me = '';
  var chatLog = $('chat-log');
  var editing = null; // { offset, draft } of the message being edited, kept across renders

  // Originals in offset order, each at its latest edit (events are in offset order, so the
  // last change of an offset wins); edit and delete events themselves are not shown.
  function chatMessages(events) {
    var changes = new Map();
    events.forEach(function (ev) { if (ev.op) changes.set(ev.of, ev); });
    return events.filter(function (ev) { return !ev.op; }).map(function (ev) {
      var change = changes.get(ev.offset);
      if (!change) return { offset: ev.offset, user: ev.user, data: ev.data, sig: String(ev.offset) };
      var data = change.op === 'delete' ? { at: ev.data.at } : { text: change.data.text, at: ev.data.at };
      return { offset: ev.offset, user: ev.user, data: data, change: change.op, sig: ev.offset + '@' + change.offset };
    });
  }

  function chatItem(msg) {
    var li = el('li', 'msg' + (msg.user === me ? ' mine' : '') + (msg.change === 'delete' ? ' deleted' : ''));
    li.dataset.offset = String(msg.offset);
    li.dataset.sig = msg.sig;
    var meta = el('div', 'msg-meta');
    meta.appendChild(el('span', 'msg-user', msg.user));
    var at = timeOf(msg.data.at);
    if (at) meta.appendChild(el('time', '', at));
    var off = el('span', 'offset', '#' + msg.offset);
    off.title = 'offset ' + msg.offset + ' in ' + convChannel[active];
    meta.appendChild(off);
    if (msg.change === 'edit') meta.appendChild(el('span', 'msg-edited', 'edited'));
    if (msg.user === me && msg.change !== 'delete' && !(editing && editing.offset === msg.offset)) {
      var button = el('button', 'quiet msg-edit', 'Edit');
      button.type = 'button';
      button.setAttribute('aria-label', 'Edit message #' + msg.offset);
      button.addEventListener('click', function () { startEdit(msg); });
      meta.appendChild(button);
    }
    li.appendChild(meta);
    if (editing && editing.offset === msg.offset) {
      li.appendChild(editor(msg));
    } else if (msg.change === 'delete') {
      li.appendChild(el('p', 'msg-text', 'message deleted'));
    } else {
      li.appendChild(el('p', 'msg-text', typeof msg.data.text === 'string' ? msg.data.text : JSON.stringify(msg.data)));
    }
    return li;
  }

  function renderChat(events) {
    var msgs = chatMessages(events);
    var atBottom = chatLog.scrollHeight - chatLog.scrollTop - chatLog.clientHeight < 40;
    var shown = Array.from(chatLog.children);
    var unchanged = shown.length <= msgs.length && shown.every(function (li, i) { return li.dataset.sig === msgs[i].sig; });
    if (unchanged) {
      // Only newer messages: append them (screen readers announce just these).
      msgs.slice(shown.length).forEach(function (m) { chatLog.appendChild(chatItem(m)); });
    } else {
      var focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest('.msg-editor') : null;
      chatLog.textContent = '';
      msgs.forEach(function (m) { chatLog.appendChild(chatItem(m)); });
      if (focused) focusEditor();
    }
    $('chat-empty').textContent = 'No messages yet. Say hello!';
    $('chat-empty').hidden = msgs.length > 0;
    if (atBottom || shown.length === 0) chatLog.scrollTop = chatLog.scrollHeight;
  }

  function rerenderChat() {
    chatLog.textContent = '';
    var stream = convs[active];
    if (stream.loaded) renderChat(stream.ordered());
  }

  // ---- editing one's own messages (RPC tidings.edit) -----------------------------------

  function startEdit(msg) {
    editing = { offset: msg.offset, draft: typeof msg.data.text === 'string' ? msg.data.text : '', at: msg.data.at };
    rerenderChat();
    focusEditor();
  }

  function focusEditor() {
    var input = chatLog.querySelector('.msg-editor input');
    if (input) input.focus();
  }

  function editor(msg) {
    var form = el('form', 'msg-editor');
    form.setAttribute('autocomplete', 'off');
    var input = document.createElement('input');
    input.type = 'text';
    input.maxLength = 500;
    input.value = editing.draft;
    input.setAttribute('aria-label', 'New text of message #' + msg.offset);
    input.addEventListener('input', function () { editing.draft = input.value; });
    input.addEventListener('keydown', function (event) { if (event.key === 'Escape') { editing = null; rerenderChat(); } });
    var save = el('button', 'msg-save', 'Save');
    save.type = 'submit';
    var cancel = el('button', 'quiet', 'Cancel');
    cancel.type = 'button';
    cancel.addEventListener('click', function () { editing = null; rerenderChat(); });
    form.appendChild(input);
    form.appendChild(save);
    form.appendChild(cancel);
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text || !live(convs[active])) return;
      save.disabled = true;
      var channel = convChannel[active];
      var target = editing;
      // Shown once its publication comes back, like a new message.
      client.rpc('tidings.edit', { channel: channel, offset: target.offset, data: { type: 'chat', text: text, user: me, at: target.at } }).then(function () {
        if (editing === target) editing = null;
        rerenderChat();
      }, function (err) {
        save.disabled = false;
        showAlert(['Could not edit the message: ' + errText(err)]);
      });
    });
    return form;
  }

  // ---- conversations and unread badges (read cursors) ----------------------------------

  var CONVS = ['general', 'random'];
  var convChannel = { general: channels.chat, random: channels.random };
  var active = 'general';
  var cursors = {};  // channel → { offset, read }: the server's answer, moved on by live publications
  var reading = {};  // channel → a tidings.read in flight; 'again' asks for one more after it

  function cursorsOn() { return client !== null && client.state === 'connected' && me !== 'anonymous'; }

  function renderBadges() {
    CONVS.forEach(function (key) {
      var tab = document.querySelector('.conv[data-conv="' + key + '"]');
      var c = cursors[convChannel[key]];
      var n = c ? Math.max(0, c.offset - c.read) : 0;
      var badge = tab.querySelector('.badge');
      badge.textContent = n > 99 ? '99+' : String(n);
      badge.hidden = n === 0;
      tab.setAttribute('aria-pressed', key === active ? 'true' : 'false');
      tab.setAttribute('aria-label', key + (n ? ', ' + plural(n, 'unread message', 'unread messages') : ''));
    });
  }

  // Positions only move forward: answers and pushes may arrive in any order.
  function setCursor(channel, state) {
    var c = cursors[channel] || { offset: 0, read: 0 };
    cursors[channel] = {
      offset: Math.max(c.offset, Number(state.offset) || 0),
      read: Math.max(c.read, Number(state.read) || 0),
    };
    renderBadges();
  }

  function markRead(channel) {
    var c = cursors[channel];
    if (!cursorsOn() || !c || c.read >= c.offset) return;
    if (reading[channel]) { reading[channel].again = true; return; }
    reading[channel] = { again: false };
    client.rpc('tidings.read', { channel: channel, offset: c.offset }).then(function (res) {
      setCursor(channel, res.data);
    }, function () {
      // Badges are a convenience: the next message or visit tries again.
    }).finally(function () {
      var again = reading[channel].again;
      delete reading[channel];
      if (again) markRead(channel);
    });
  }

  function onLive(key) {
    return function (offset) {
      var channel = convChannel[key];
      setCursor(channel, { offset: offset });
      if (key === active && document.visibilityState === 'visible') markRead(channel);
    };
  }

  function loadUnread() {
    if (!cursorsOn()) return;
    var names = CONVS.map(function (k) { return convChannel[k]; });
    client.rpc('tidings.unread', { channels: names }).then(function (res) {
      var states = res.data.channels || {};
      names.forEach(function (ch) { if (states[ch] && !states[ch].error) setCursor(ch, states[ch]); });
      if (document.visibilityState === 'visible') markRead(convChannel[active]);
    }, function () {});
  }

  function show(key) {
    if (key === active) return;
    active = key;
    editing = null;
    $('chat-channel').textContent = convChannel[key];
    $('chat-empty').textContent = 'Loading\u2026';
    $('chat-empty').hidden = false;
    rerenderChat();
    renderBadges();
    updateControls();
    markRead(convChannel[key]);
  }

  Array.from(document.querySelectorAll('.conv')).forEach(function (tab) {
    tab.addEventListener('click', function () { show(tab.dataset.conv); });
  });
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') markRead(convChannel[active]);
  });

  // ---- to-do list: a fold over the channel's events -----------------------------------

  var pendingToggles = new Map(); // item id → the state asked for, until its event arrives

  function foldTodos(events) {
    var items = new Map();
    events.forEach(function (ev) {
      var d = ev.data;
      if (ev.op) return; // edits and deletes are for the chat
      if (d.type === 'add' && typeof d.text === 'string') {
        items.set(ev.offset, { id: ev.offset, text: d.text, done: false, by: ev.user });
      } else if (d.type === 'toggle' && items.has(Number(d.item))) {
        items.get(Number(d.item)).done = d.done === true;
      }
    });
    return Array.from(items.values());
  }

  function describe(ev, names) {
    var d = ev.data;
    if (d.type === 'add') return ev.user + ' added \u201c' + d.text + '\u201d';
    if (d.type === 'toggle') {
      var what = names.get(Number(d.item));
      return ev.user + (d.done ? ' checked ' : ' unchecked ') + (what ? '\u201c' + what + '\u201d' : 'item #' + d.item);
    }
    return ev.user + ': ' + JSON.stringify(d);
  }

  function todoItem(item) {
    var li = el('li', 'todo');
    li.dataset.id = String(item.id);
    var label = el('label');
    var box = document.createElement('input');
    box.type = 'checkbox';
    box.addEventListener('change', function () { toggle(item.id, box.checked); });
    label.appendChild(box);
    label.appendChild(el('span', 'todo-text'));
    li.appendChild(label);
    var by = el('span', 'todo-by');
    li.appendChild(by);
    return li;
  }

  function renderTodos(events) {
    var items = foldTodos(events);
    var list = $('todo-list');
    var existing = new Map();
    Array.from(list.children).forEach(function (li) { existing.set(Number(li.dataset.id), li); });
    var done = 0;
    items.forEach(function (item, index) {
      var li = existing.get(item.id) || todoItem(item);
      existing.delete(item.id);
      var pending = pendingToggles.has(item.id);
      var checked = pending ? pendingToggles.get(item.id) : item.done;
      if (item.done) done++;
      li.classList.toggle('done', checked);
      li.classList.toggle('pending', pending);
      li.setAttribute('aria-busy', pending ? 'true' : 'false');
      li.querySelector('input').checked = checked;
      li.querySelector('.todo-text').textContent = item.text;
      li.querySelector('.todo-by').textContent = item.by + ' \u00b7 #' + item.id;
      li.querySelector('.todo-by').title = 'added by ' + item.by + ' at offset ' + item.id;
      // Existing rows stay where they are (a moved node loses keyboard focus).
      if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
    });
    existing.forEach(function (li) { li.remove(); });
    $('todo-empty').textContent = 'Nothing to do yet.';
    $('todo-empty').hidden = items.length > 0;
    $('todo-summary').textContent = items.length ? done + ' of ' + items.length + ' done' : '';

    var names = new Map();
    var log = $('todo-events');
    log.textContent = '';
    events.forEach(function (ev) {
      if (ev.data.type === 'add') names.set(ev.offset, ev.data.text);
      var li = el('li');
      li.appendChild(el('span', 'offset', '#' + ev.offset));
      li.appendChild(el('span', '', describe(ev, names)));
      log.appendChild(li);
    });
    $('todo-events-count').textContent = plural(events.length, 'event', 'events');
  }

  // ---- wiring -------------------------------------------------------------------------

  var client = null;
  var convs = {
    general: new Stream('chat', 'tail', function (events) { if (active === 'general') renderChat(events); }),
    random: new Stream('random', 'tail', function (events) { if (active === 'random') renderChat(events); }),
  };
  convs.general.onLive = onLive('general');
  convs.random.onLive = onLive('random');
  var todos = new Stream('todos', 'all', function (events) { todosRendered = events; renderTodos(events); });
  var todosRendered = [];

  function live(stream) {
    return client !== null && client.state === 'connected' && stream.sub !== null && stream.sub.state === 'subscribed';
  }
  function updateControls() {
    var chatOk = live(convs[active]);
    var todoOk = live(todos);
    $('chat-input').disabled = !chatOk;
    $('chat-send').disabled = !chatOk;
    $('todo-input').disabled = !todoOk;
    $('todo-add').disabled = !todoOk;
    Array.from($('todo-list').querySelectorAll('input')).forEach(function (box) { box.disabled = !todoOk; });
    var why = client === null ? 'Not connected.' : 'Offline: you can write again once the connection is back.';
    $('chat-hint').textContent = chatOk ? '' : why;
    $('todo-hint').textContent = todoOk ? '' : why;
  }

  function toggle(id, done) {
    pendingToggles.set(id, done);
    renderTodos(todosRendered);
    todos.sub.publish({ type: 'toggle', item: id, done: done, at: new Date().toISOString() }).catch(function (err) {
      showAlert(['Could not update the item: ' + errText(err)]);
    }).finally(function () {
      pendingToggles.delete(id);
      renderTodos(todosRendered);
    });
  }

  $('chat-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var input = $('chat-input');
    var text = input.value.trim();
    if (!text || !live(convs[active])) return;
    $('chat-send').disabled = true;
    // Shown when its publication comes back: that is, once committed, with its offset.
    convs[active].sub.publish({ type: 'chat', text: text, user: me, at: new Date().toISOString() }).then(function () {
      input.value = '';
    }, function (err) {
      showAlert(['Could not send the message: ' + errText(err)]);
    }).finally(function () {
      updateControls();
      input.focus();
    });
  });

  $('todo-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var input = $('todo-input');
    var text = input.value.trim();
    if (!text || !live(todos)) return;
    $('todo-add').disabled = true;
    todos.sub.publish({ type: 'add', text: text, user: me, at: new Date().toISOString() }).then(function () {
      input.value = '';
    }, function (err) {
      showAlert(['Could not add the item: ' + errText(err)]);
    }).finally(function () {
      updateControls();
      input.focus();
    });
  });

  function notConnected(state, text) {
    setConnection(state, text);
    $('who').textContent = 'nobody';
    $('chat-empty').textContent = 'Not connected.';
    $('todo-empty').textContent = 'Not connected.';
  }

  function setConnection(state, text) {
    var pill = $('conn');
    pill.dataset.state = state;
    $('conn-text').textContent = text;
    updateControls();
  }

  function subjectOf(token) {
    try {
      var part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      var bytes = Uint8Array.from(atob(part), function (c) { return c.charCodeAt(0); });
      var claims = JSON.parse(new TextDecoder().decode(bytes));
      return typeof claims.sub === 'string' && claims.sub ? claims.sub : 'anonymous';
    } catch (e) {
      return 'unknown';
    }
  }

  function pickName() {
    var asked = (params.get('user') || '').trim();
    if (NAME_RE.test(asked)) return asked;
    var saved = null;
    try { saved = sessionStorage.getItem('tidings-demo-user'); } catch (e) { saved = null; }
    if (saved && NAME_RE.test(saved)) return saved;
    var name = 'guest-' + Math.floor(1000 + Math.random() * 9000);
    try { sessionStorage.setItem('tidings-demo-user', name); } catch (e) { /* private mode */ }
    return name;
  }

  // A development gateway (TIDINGS_DEMO_TOKENS, on under "tidings dev") hands out tokens;
  // null means this one does not.
  async function demoToken(name) {
    var res = await fetch('/demo/token?user=' + encodeURIComponent(name), { cache: 'no-store' });
    if (res.status === 404) return null;
    if (!res.ok) throw new Error('GET /demo/token answered ' + res.status);
    return (await res.json()).token;
  }

  async function start() {
    if (typeof Centrifuge === 'undefined') {
      notConnected('disconnected', 'No SDK');
      showAlert(['The centrifuge SDK did not load from ', code('/demo/centrifuge.js'), '.']);
      return;
    }
    var options = { minReconnectDelay: 300, maxReconnectDelay: 5000 };
    var token = params.get('token');
    if (token) {
      me = subjectOf(token);
      options.token = token;
    } else {
      var name = pickName();
      var fetched;
      try {
        fetched = await demoToken(name);
      } catch (err) {
        notConnected('disconnected', 'Not connected');
        showAlert(['Could not get a demo token: ' + errText(err)]);
        return;
      }
      if (!fetched) {
        notConnected('disconnected', 'No token');
        var example = new URL(location.href);
        example.searchParams.delete('user');
        example.searchParams.set('token', 'YOUR_TOKEN');
        showAlert([
          'This server does not hand out demo tokens. Pass a connection token in the address: ',
          code(example.href), ' \u2014 make one with ', code('npx tidings token --user NAME'),
          ', or run ', code('npx tidings dev'), ', which serves tokens to this page.',
        ]);
        return;
      }
      me = name;
      $('open-other').hidden = false;
      options.token = fetched;
      options.getToken = function () {
        return demoToken(name).then(function (t) {
          if (!t) throw new Centrifuge.UnauthorizedError('demo tokens were turned off');
          return t;
        });
      };
    }
    $('who').textContent = me;
    var other = new URL(location.href);
    other.searchParams.delete('user');
    other.searchParams.delete('token');
    $('open-other').href = other.pathname + other.search;

    client = new Centrifuge(wsUrl, options);
    var wasConnected = false;
    client.on('connecting', function (ctx) {
      if (wasConnected) round = null; // a new disconnection: a new recovery to report
      setConnection('connecting', wasConnected ? 'Reconnecting\u2026' : 'Connecting\u2026');
      $('conn').title = ctx.reason || '';
    });
    client.on('connected', function () {
      wasConnected = true;
      setConnection('connected', 'Connected');
      $('conn').title = '';
      loadUnread();
    });
    // Another window of this user read a conversation: its badge here follows.
    client.on('message', function (ctx) {
      var d = ctx.data;
      if (d && d.type === 'tidings.read' && typeof d.channel === 'string') setCursor(d.channel, d);
    });
    client.on('disconnected', function (ctx) {
      setConnection('disconnected', 'Disconnected');
      if (ctx.code !== 0) showAlert(['Disconnected by the server: ' + ctx.reason + ' (code ' + ctx.code + ').']);
    });
    convs.general.subscribe(client, channels.chat);
    convs.random.subscribe(client, channels.random);
    todos.subscribe(client, channels.todos);
    client.connect();
  }

  updateControls();
  start();
})();
`;
