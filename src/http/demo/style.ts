/**
 * The demo page's stylesheet: system fonts only (no web fonts, nothing fetched from
 * elsewhere), light and dark schemes, readable at any width.
 */
export const DEMO_STYLE = String.raw`
:root {
  color-scheme: light dark;
  --bg: #f4f5f8;
  --card: #ffffff;
  --text: #1c2030;
  --muted: #5c6378;
  --line: #dde0e8;
  --accent: #3451d1;
  --accent-text: #ffffff;
  --accent-soft: #e8ecfc;
  --ok: #17803d;
  --warn: #a15c00;
  --bad: #b42318;
  --notice-bg: #e7f6ec;
  --notice-line: #9bd3ad;
  --alert-bg: #fdecea;
  --alert-line: #f1aca5;
  --radius: 10px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 16px;
  line-height: 1.45;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #13151c;
    --card: #1c1f29;
    --text: #e6e8ef;
    --muted: #a0a6b8;
    --line: #323748;
    --accent: #8fa2ff;
    --accent-text: #10131c;
    --accent-soft: #262c45;
    --ok: #5fd38a;
    --warn: #f0b355;
    --bad: #ff8a80;
    --notice-bg: #173222;
    --notice-line: #2f6b45;
    --alert-bg: #3a1c1a;
    --alert-line: #7a3530;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); }
.skip { position: absolute; left: -9999px; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
.skip:focus { left: 1rem; top: 1rem; background: var(--card); padding: .5rem .75rem; border-radius: 6px; z-index: 10; }
header.top {
  display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: .75rem;
  padding: .9rem 1.5rem; background: var(--card); border-bottom: 1px solid var(--line);
}
.brand { display: flex; align-items: baseline; gap: .6rem; }
.brand h1 { font-size: 1.25rem; margin: 0; letter-spacing: -.01em; }
.brand span { color: var(--muted); font-size: .9rem; }
.session { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; font-size: .9rem; color: var(--muted); }
.session strong { color: var(--text); font-weight: 600; }
.conn {
  display: inline-flex; align-items: center; gap: .45rem; padding: .2rem .7rem; border-radius: 999px;
  border: 1px solid var(--line); font-weight: 600; color: var(--text); background: var(--bg);
}
.conn::before { content: ""; width: .6rem; height: .6rem; border-radius: 50%; background: var(--muted); }
.conn[data-state="connected"]::before { background: var(--ok); }
.conn[data-state="connecting"]::before { background: var(--warn); animation: pulse 1s ease-in-out infinite alternate; }
.conn[data-state="disconnected"]::before { background: var(--bad); }
@keyframes pulse { from { opacity: 1; } to { opacity: .3; } }
@media (prefers-reduced-motion: reduce) { .conn[data-state="connecting"]::before { animation: none; } }
main { max-width: 1100px; margin: 0 auto; padding: 1.25rem 1.5rem 2rem; }
.banner {
  display: flex; align-items: flex-start; justify-content: space-between; gap: 1rem;
  border-radius: var(--radius); padding: .75rem 1rem; margin-bottom: 1rem; border: 1px solid;
}
.banner[hidden] { display: none; }
.banner p { margin: 0; }
.notice { background: var(--notice-bg); border-color: var(--notice-line); }
.alert { background: var(--alert-bg); border-color: var(--alert-line); }
.alert code { font-size: .9em; word-break: break-all; }
.banner button { flex: none; }
.grid { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1.25rem; }
@media (max-width: 820px) { .grid { grid-template-columns: minmax(0, 1fr); } }
.card {
  background: var(--card); border: 1px solid var(--line); border-radius: var(--radius);
  display: flex; flex-direction: column; min-height: 0;
}
.card > header { padding: .85rem 1rem .6rem; border-bottom: 1px solid var(--line); }
.card h2 { font-size: 1.05rem; margin: 0; }
.card .sub { margin: .15rem 0 0; font-size: .82rem; color: var(--muted); }
.card .sub code { font-size: .95em; }
.empty { color: var(--muted); font-size: .92rem; padding: 1rem; margin: 0; }
.empty[hidden] { display: none; }
.chat-head { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: .5rem; }
.convs { display: flex; gap: .35rem; }
button.conv {
  display: inline-flex; align-items: center; gap: .4rem; padding: .2rem .7rem; font-weight: 500;
  background: transparent; color: var(--text); border-color: var(--line);
}
button.conv[aria-pressed="true"] { background: var(--accent-soft); border-color: var(--accent); font-weight: 600; }
.badge {
  min-width: 1.3rem; padding: 0 .35rem; border-radius: 999px; background: var(--bad); color: #fff;
  font-size: .75rem; font-weight: 700; line-height: 1.3rem; text-align: center;
}
.badge[hidden] { display: none; }
.msg-edit { margin-left: auto; padding: 0 .45rem; font-size: .75rem; }
.msg-edited { font-style: italic; }
.msg.deleted .msg-text { color: var(--muted); font-style: italic; }
form.msg-editor { display: flex; flex-wrap: wrap; gap: .35rem; margin-top: .25rem; }
form.msg-editor input { flex: 1 1 10rem; min-width: 0; }
form.msg-editor button { padding: .25rem .7rem; }
.chat-log { list-style: none; margin: 0; padding: .5rem 1rem; height: 26rem; overflow-y: auto; }
.msg { padding: .45rem .65rem; margin: .35rem 0; border-radius: 8px; background: var(--bg); max-width: 85%; width: fit-content; }
.msg.mine { margin-left: auto; background: var(--accent-soft); }
.msg-meta { display: flex; align-items: baseline; gap: .5rem; font-size: .78rem; color: var(--muted); }
.msg-user { font-weight: 600; color: var(--text); }
.msg-text { margin: .1rem 0 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.offset {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .75rem;
  color: var(--muted); border: 1px solid var(--line); border-radius: 4px; padding: 0 .3rem;
}
form.compose { display: flex; gap: .5rem; padding: .75rem 1rem; border-top: 1px solid var(--line); flex-wrap: wrap; }
form.compose input { flex: 1 1 12rem; min-width: 0; }
.hint { flex-basis: 100%; margin: 0; font-size: .8rem; color: var(--muted); }
.hint:empty { display: none; }
input[type="text"] {
  font: inherit; color: var(--text); background: var(--bg); border: 1px solid var(--line);
  border-radius: 8px; padding: .5rem .7rem;
}
button {
  font: inherit; font-weight: 600; border: 1px solid transparent; border-radius: 8px; padding: .5rem 1rem;
  background: var(--accent); color: var(--accent-text); cursor: pointer;
}
button.quiet { background: transparent; color: var(--text); border-color: var(--line); padding: .2rem .6rem; font-weight: 500; }
button:disabled { opacity: .5; cursor: not-allowed; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.todo-list { list-style: none; margin: 0; padding: .35rem 0; max-height: 21rem; overflow-y: auto; }
.todo { display: flex; align-items: center; gap: .6rem; padding: .4rem 1rem; }
.todo + .todo { border-top: 1px solid var(--line); }
.todo label { flex: 1; display: flex; align-items: center; gap: .6rem; cursor: pointer; min-width: 0; }
.todo input[type="checkbox"] { width: 1.1rem; height: 1.1rem; accent-color: var(--accent); flex: none; }
.todo-text { overflow-wrap: anywhere; }
.todo.done .todo-text { text-decoration: line-through; color: var(--muted); }
.todo.pending { opacity: .6; }
.todo-by { font-size: .78rem; color: var(--muted); flex: none; }
.summary { font-size: .85rem; color: var(--muted); padding: 0 1rem .5rem; margin: 0; }
details.events { border-top: 1px solid var(--line); padding: .6rem 1rem; font-size: .85rem; }
details.events summary { cursor: pointer; color: var(--muted); }
details.events ol { list-style: none; margin: .5rem 0 0; padding: 0; max-height: 12rem; overflow-y: auto; }
details.events li { display: flex; gap: .5rem; padding: .15rem 0; }
footer.about { max-width: 1100px; margin: 0 auto; padding: 0 1.5rem 2rem; color: var(--muted); font-size: .88rem; }
footer.about p { margin: .3rem 0; }
a { color: var(--accent); }
`;
