/**
 * The demo page served at GET /: one self-contained HTML document (markup, inline style and
 * inline script) that loads nothing but the centrifuge SDK from this same gateway. Its
 * Content-Security-Policy allows exactly that: the inline blocks by hash, scripts and
 * connections to this origin, and nothing else.
 */
import { createHash } from 'node:crypto';
import { DEMO_SCRIPT } from './script.js';
import { DEMO_STYLE } from './style.js';

/** Where the gateway serves the SDK's browser build. */
export const SDK_PATH = '/demo/centrifuge.js';

export interface DemoPage {
  html: string;
  /** The Content-Security-Policy header to send with it. */
  csp: string;
}

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** `sdkVersion` busts browser caches of the SDK when the package is upgraded. */
export function renderDemoPage(sdkVersion: string): DemoPage {
  const sdkUrl = `${SDK_PATH}?v=${encodeURIComponent(sdkVersion)}`;
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Tidings — live demo</title>
<link rel="icon" href="data:,">
<style>${DEMO_STYLE}</style>
</head>
<body>
<a class="skip" href="#chat-input">Skip to the chat</a>
<header class="top">
  <div class="brand"><h1>Tidings</h1><span>live demo</span></div>
  <div class="session">
    <span id="conn" class="conn" data-state="connecting" role="status" aria-live="polite"><span id="conn-text">Starting…</span></span>
    <span>You are <strong id="who">…</strong></span>
    <span>Room <strong id="room">lobby</strong></span>
    <a id="open-other" href="/" target="_blank" rel="noopener" hidden>Open as another user ↗</a>
  </div>
</header>
<main>
  <div id="alert" class="banner alert" role="alert" hidden>
    <p id="alert-text"></p>
    <button type="button" class="quiet" id="alert-close" aria-label="Dismiss this message">Dismiss</button>
  </div>
  <div id="notice" class="banner notice" role="status" aria-live="polite" hidden>
    <p id="notice-text"></p>
    <button type="button" class="quiet" id="notice-close" aria-label="Dismiss this notice">Dismiss</button>
  </div>
  <div class="grid">
    <section class="card" aria-labelledby="chat-title">
      <header>
        <div class="chat-head">
          <h2 id="chat-title">Chat</h2>
          <nav class="convs" aria-label="Conversations">
            <button type="button" class="conv" data-conv="general" aria-pressed="true">general<span class="badge" hidden></span></button>
            <button type="button" class="conv" data-conv="random" aria-pressed="false">random<span class="badge" hidden></span></button>
          </nav>
        </div>
        <p class="sub">Channel <code id="chat-channel"></code>. Each message shows its offset: its place in the channel, assigned when it is committed. Badges count what you have not read yet, in every window you have open.</p>
      </header>
      <p id="chat-empty" class="empty">Loading…</p>
      <ol id="chat-log" class="chat-log" role="log" aria-live="polite" aria-label="Chat messages"></ol>
      <form id="chat-form" class="compose" autocomplete="off">
        <label class="sr-only" for="chat-input">Message</label>
        <input id="chat-input" type="text" maxlength="500" placeholder="Write a message…" aria-describedby="chat-hint" disabled>
        <button id="chat-send" type="submit" disabled>Send</button>
        <p id="chat-hint" class="hint" aria-live="polite"></p>
      </form>
    </section>
    <section class="card" aria-labelledby="todo-title">
      <header>
        <h2 id="todo-title">Shared to-do list</h2>
        <p class="sub">Channel <code id="todo-channel"></code>. The list is rebuilt from the channel's events, in offset order.</p>
      </header>
      <form id="todo-form" class="compose" autocomplete="off">
        <label class="sr-only" for="todo-input">New item</label>
        <input id="todo-input" type="text" maxlength="200" placeholder="Add an item…" aria-describedby="todo-hint" disabled>
        <button id="todo-add" type="submit" disabled>Add</button>
        <p id="todo-hint" class="hint" aria-live="polite"></p>
      </form>
      <p id="todo-empty" class="empty">Loading…</p>
      <ul id="todo-list" class="todo-list" aria-label="To-do items"></ul>
      <p id="todo-summary" class="summary"></p>
      <details class="events">
        <summary>Event log (<span id="todo-events-count">0 events</span>)</summary>
        <ol id="todo-events" aria-label="To-do events in offset order"></ol>
      </details>
    </section>
  </div>
</main>
<footer class="about">
  <p>Every message is committed to PostgreSQL before it is acknowledged, and reaches every page in the same order. Open this page in a second window, go offline for a while, come back: the page recovers exactly what it missed.</p>
  <p>Append <code>?room=NAME</code> for a room of your own.</p>
</footer>
<script src="${sdkUrl}"></script>
<script>${DEMO_SCRIPT}</script>
</body>
</html>
`;
  const csp = [
    "default-src 'none'",
    `script-src 'self' ${sha256(DEMO_SCRIPT)}`,
    `style-src ${sha256(DEMO_STYLE)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, csp };
}
