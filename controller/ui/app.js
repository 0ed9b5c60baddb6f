// Fleet dashboard: one page, no library. Talks to /api/v1/ of the server
// that served it, with the token as a bearer header (kept in this tab's
// sessionStorage only); follows rollouts and events through server-sent
// events read with fetch (EventSource cannot send a header).
"use strict";

const TOKEN_KEY = "fleet.token";
const ACTOR_KEY = "fleet.actor";
const HOST_PAGE = 100;
const TASK_PAGE = 200;
const EVENT_ROWS = 100;

// Figures the browser tests read: when the page first showed data, and how
// long after a host's transition (its task's updated_at_ms) it showed it.
window.fleetMetrics = { firstRenderMs: null, updateLatenciesMs: [], updates: 0, drawMs: [] };

let caller = null;       // the answer of /api/v1/whoami
let pageAbort = null;    // ends the streams and timers of the page shown

// ---- small DOM helpers ------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function table(headers, rows, emptyText) {
  if (rows.length === 0) return h("p", { class: "muted" }, emptyText || "None.");
  return h("div", { class: "scroll" },
    h("table", {}, h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
      h("tbody", {}, rows)));
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes);
  if (window.fleetMetrics.firstRenderMs === null) {
    window.fleetMetrics.firstRenderMs = performance.now();
  }
}

function showError(message) {
  const el = document.getElementById("error");
  el.textContent = message || "";
  el.hidden = !message;
}

// ---- formatting -------------------------------------------------------

function pad(n) { return String(n).padStart(2, "0"); }

// "2025-03-04 10:15:02 UTC+01:00": local time with its zone.
function fmtTime(ms) {
  ms = Number(ms);
  if (!ms) return "—";
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const zone = `UTC${off < 0 ? "-" : "+"}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zone}`;
}

function fmtAgo(ms) {
  ms = Number(ms);
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

function fmtDuration(ms) {
  ms = Number(ms);
  if (ms < 1000) return `${ms}ms`;
  if (ms < 120000) return `${(ms / 1000).toFixed(ms % 1000 ? 1 : 0)}s`;
  return `${Math.round(ms / 60000)}m`;
}

function fmtBytes(n) {
  n = Number(n);
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// "ROLLOUT_STATE_ROLLED_BACK" -> "rolled_back".
function enumName(value, prefix) {
  return String(value || "").replace(prefix, "").toLowerCase();
}

function stateClass(name) {
  if (["succeeded", "healthy", "done", "connected", "reverted"].includes(name)) return "ok";
  if (["failed", "rolled_back", "lost", "revert_failed", "disconnected"].includes(name)) return "bad";
  if (["staging", "activating", "rolling_back", "paused", "switching", "reverting"].includes(name)) return "busy";
  return "";
}

function badge(name) { return h("span", { class: `state ${stateClass(name)}` }, name.replace(/_/g, " ")); }

function rolloutState(r) { return enumName(r.state, "ROLLOUT_STATE_"); }
function rolloutKind(r) { return enumName(r.kind, "ROLLOUT_KIND_"); }
function isConfig(r) { return r.subject === "SUBJECT_CONFIG"; }
function isTerminal(r) { return ["succeeded", "rolled_back", "failed"].includes(rolloutState(r)); }

function rolloutTitle(r) {
  const what = isConfig(r) ? "config " : "";
  const kind = rolloutKind(r) === "rollback" ? "rollback" : rolloutKind(r) === "catch_up" ? "catch-up" : "rollout";
  return `${what}${kind} ${r.id} of ${r.app}: ${r.from_version || "(none)"} → ${r.version}`;
}

function progressBar(p) {
  if (!p || !p.total) return null;
  // Through the CSSOM: the page's policy refuses style attributes.
  const part = (k) => {
    const el = h("span", { class: k, title: `${k} ${p[k]}` });
    el.style.width = `${(100 * p[k]) / p.total}%`;
    return el;
  };
  return h("div", {},
    h("div", { class: "bar" }, part("done"), part("failed"), part("switching"), part("pending")),
    h("span", { class: "muted" }, `done ${p.done} · failed ${p.failed} · switching ${p.switching} · pending ${p.pending} of ${p.total}`));
}

// ---- API ----------------------------------------------------------------

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options) {
  const opts = Object.assign({ headers: {} }, options || {});
  opts.headers = Object.assign({ Accept: "application/json" }, authHeaders(), opts.headers);
  if (opts.json !== undefined) {
    opts.method = opts.method || "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(opts.json);
  }
  const res = await fetch(path, opts);
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
  if (!res.ok) {
    const message = body && body.error ? body.error : `${res.status} ${res.statusText}`;
    if (res.status === 401) { signOut(message); }
    throw new ApiError(res.status, message);
  }
  return body;
}

// Reads server-sent events from `path` until `signal` aborts, calling
// onEvent(name, data, id). Reconnects after a lost connection (onOpen runs
// again, to reload what was missed) unless onEvent returns "stop".
async function follow(path, signal, onEvent, onOpen) {
  while (!signal.aborted) {
    try {
      const res = await fetch(path, { headers: Object.assign({ Accept: "text/event-stream" }, authHeaders()), signal });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        showError(body.error || `${res.status} ${res.statusText}`);
        if (res.status === 401) signOut(body.error);
        return;
      }
      if (onOpen) onOpen();
      if ((await readEvents(res.body.getReader(), onEvent)) === "stop") return;
    } catch (e) {
      if (signal.aborted) return;
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function readEvents(reader, onEvent) {
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return "ended";
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message", data = "", id = 0;
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
        else if (line.startsWith("id: ")) id = Number(line.slice(4));
      }
      if (!data) continue;
      if (onEvent(name, JSON.parse(data), id) === "stop") { reader.cancel(); return "stop"; }
    }
  }
}

// ---- who may do what --------------------------------------------------

function role() {
  if (!caller || !caller.auth_required) return "admin";
  return enumName(caller.token && caller.token.role, "ROLE_");
}

// Whether the token may act on `app` (deployer of it, or admin); the
// server decides anyway, this only hides what it would refuse.
function canAct(app) {
  const r = role();
  if (r === "admin") return true;
  return r === "deployer" && (!caller.token.app || caller.token.app === app);
}

function actor() { return sessionStorage.getItem(ACTOR_KEY) || ""; }

async function act(path, body, button) {
  showError("");
  if (button) button.disabled = true;
  try {
    return await api(path, { json: Object.assign({ actor: actor() }, body || {}) });
  } catch (e) {
    showError(e.message);
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

// ---- login ------------------------------------------------------------

function signOut(message) {
  // Without a token the refusal only says that one is needed.
  if (!sessionStorage.getItem(TOKEN_KEY)) message = "";
  sessionStorage.removeItem(TOKEN_KEY);
  caller = null;
  showLogin(message);
}

function showLogin(message) {
  if (pageAbort) pageAbort.abort();
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  const token = h("input", { id: "token", type: "password", autocomplete: "off", required: true, placeholder: "fleet_…" });
  const name = h("input", { id: "actor", type: "text", value: actor(), placeholder: "e.g. alice" });
  const form = h("form", { class: "card login", id: "login" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "An API token (fleetctl token create --role viewer|deployer|admin). It stays in this tab only."),
    h("label", { for: "token" }, "API token"), token,
    h("label", { for: "actor" }, "Your name, for the history (optional)"), name,
    h("p", { class: "error" }, message || ""),
    h("button", { class: "primary", type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, token.value.trim());
    sessionStorage.setItem(ACTOR_KEY, name.value.trim());
    await start();
  });
  show(form);
  showError(message || "");
}

async function start() {
  try {
    caller = await api("/api/v1/whoami");
  } catch (e) {
    if (e.status !== 401) showError(e.message);
    return;
  }
  showError("");
  document.getElementById("nav").hidden = false;
  const signout = document.getElementById("signout");
  signout.hidden = !caller.auth_required;
  const t = caller.token;
  document.getElementById("who").textContent = caller.auth_required
    ? `token ${t.id} · ${role()}${t.app ? ` of ${t.app}` : ""}` : "development mode: no tokens";
  route();
}

// ---- pages ------------------------------------------------------------

function route() {
  if (!caller) return;
  if (pageAbort) pageAbort.abort();
  pageAbort = new AbortController();
  const signal = pageAbort.signal;
  showError("");
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const page = parts[0] || "fleet";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page);
  const pages = { fleet: fleetPage, app: appPage, rollout: rolloutPage, hosts: hostsPage, audit: auditPage };
  (pages[page] || fleetPage)(parts.slice(1), signal).catch((e) => {
    if (!signal.aborted) showError(e.message);
  });
}

// Calls fn at most every `ms`, and once more after the last call.
function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

async function fleetPage(_, signal) {
  const render = async () => {
    const fleet = await api("/api/v1/fleet");
    if (signal.aborted) return;
    const rows = fleet.apps.map((a) => h("tr", {},
      h("td", {}, h("a", { href: `#/app/${encodeURIComponent(a.name)}` }, a.name)),
      h("td", { class: "mono" }, a.release || "—"),
      h("td", { class: "mono" }, a.config || "—"),
      h("td", {}, `${a.hosts_connected}/${a.hosts_total}`),
      h("td", {}, a.active_rollout ? [h("a", { href: `#/rollout/${a.active_rollout.id}` }, rolloutTitle(a.active_rollout)), " ",
        badge(rolloutState(a.active_rollout)), progressBar(a.active_rollout.progress)] : h("span", { class: "muted" }, "none")),
      h("td", { class: "reason" }, a.last_failure ? [h("a", { href: `#/rollout/${a.last_failure.id}` }, `#${a.last_failure.id}`), " ",
        badge(rolloutState(a.last_failure)), ` ${fmtTime(a.last_failure.finished_at_ms)}: `, a.last_failure.reason] : h("span", { class: "muted" }, "none"))));
    show(h("h1", {}, "Fleet"),
      h("div", { class: "tiles" },
        h("div", { class: "tile", id: "hosts-connected" }, h("b", {}, `${fleet.hosts_connected}/${fleet.hosts_total}`), "hosts connected"),
        h("div", { class: "tile" }, h("b", {}, fleet.apps.length), "apps"),
        h("div", { class: "tile" }, h("b", {}, fleet.apps.filter((a) => a.active_rollout).length), "rollouts running")),
      table(["App", "Release", "Config", "Hosts", "Running rollout", "Last failure"], rows, "No apps yet: fleetctl app apply -f app.yaml"));
  };
  await render();
  const again = debounce(() => render().catch((e) => showError(e.message)), 300);
  follow("/api/v1/events/stream", signal, () => again());
}

async function appPage([name], signal) {
  const app = encodeURIComponent(name);
  const filter = { label: "", q: "", offset: 0 };
  const hostsBox = h("div", {});
  const topBox = h("div", {});
  const confirmBox = h("div", {});  // not redrawn with the rest
  const historyBox = h("div", {});
  const renderHosts = async () => {
    const qs = new URLSearchParams({ label: filter.label, q: filter.q, offset: filter.offset, limit: HOST_PAGE });
    const s = await api(`/api/v1/apps/${app}?${qs}`);
    if (signal.aborted) return s;
    const rows = s.hosts.map((x) => {
      const st = x.state;
      return h("tr", {},
        h("td", {}, x.host_id), h("td", {}, badge(x.connected ? "connected" : "disconnected")),
        h("td", { class: "mono" }, st.current_release || "—"), h("td", { class: "mono" }, st.current_config || "—"),
        h("td", { class: "mono" }, st.last_known_good || "—"), h("td", { class: "mono" }, st.previous_release || "—"),
        h("td", { class: "mono" }, (st.releases || []).join(" ")),
        h("td", { class: "mono" }, Object.entries(x.labels || {}).map(([k, v]) => `${k}=${v}`).join(" ")));
    });
    hostsBox.replaceChildren(
      pager(s.matched, filter, HOST_PAGE, renderHosts, `${s.hosts_connected}/${s.hosts_total} connected`),
      table(["Host", "Connected", "Release", "Config", "Last good", "Previous", "On disk", "Labels"], rows, "No host matches."));
    return s;
  };
  const renderTop = async (s) => {
    const a = s.app;
    const active = s.active_rollout;
    const box = [h("dl", { class: "facts" },
      h("dt", {}, "Release"), h("dd", { class: "mono" }, a.desired_version || "—"),
      h("dt", {}, "Config"), h("dd", { class: "mono" }, a.desired_config || "—"),
      h("dt", {}, "Hosts"), h("dd", {}, `${s.hosts_connected}/${s.hosts_total} connected`),
      h("dt", {}, "Running"), h("dd", {}, active ? [h("a", { href: `#/rollout/${active.id}` }, rolloutTitle(active)), " ", badge(rolloutState(active))] : "nothing"),
      h("dt", {}, "Last rollout"), h("dd", { class: "reason" }, s.last_rollout ? [h("a", { href: `#/rollout/${s.last_rollout.id}` }, rolloutTitle(s.last_rollout)), " ",
        badge(rolloutState(s.last_rollout)), " ", s.last_rollout.reason] : "none"))];
    if (canAct(name)) {
      box.push(h("div", { class: "actions" },
        h("button", { class: "danger", id: "rollback", type: "button", onclick: () => confirmRollback(name, "release", confirmBox) }, "Roll back release…"),
        a.desired_config ? h("button", { type: "button", id: "rollback-config", onclick: () => confirmRollback(name, "config", confirmBox) }, "Roll back config…") : null));
    }
    topBox.replaceChildren(...box);
  };
  const renderHistory = async () => {
    const [hist, releases, configs, notes] = await Promise.all([
      api(`/api/v1/apps/${app}/history?limit=20`), api(`/api/v1/apps/${app}/releases`),
      api(`/api/v1/apps/${app}/configs`), api(`/api/v1/events?app=${app}&kind=notify&limit=20`)]);
    if (signal.aborted) return;
    historyBox.replaceChildren(
      h("h2", {}, "Rollouts"), rolloutsTable(hist.rollouts),
      h("h2", {}, "Releases"), table(["Version", "Pushed by", "At", "Size", "sha256", "Signed"],
        releases.releases.slice().reverse().map((r) => h("tr", {}, h("td", { class: "mono" }, r.version), h("td", {}, r.created_by),
          h("td", {}, fmtTime(r.created_at_ms)), h("td", {}, fmtBytes(r.size)), h("td", { class: "mono" }, r.sha256.slice(0, 12)),
          h("td", {}, r.signature ? "yes" : "no")))),
      h("h2", {}, "Configs"), table(["Version", "Pushed by", "At", "Files"],
        configs.configs.slice().reverse().map((c) => h("tr", {}, h("td", { class: "mono" }, c.version), h("td", {}, c.created_by),
          h("td", {}, fmtTime(c.created_at_ms)), h("td", {}, (c.files || []).length)))),
      h("h2", {}, "Notifications sent"), eventsTable(notes.events),
      h("h2", {}, "History"), eventsTable(hist.events));
  };
  const hostFilters = h("div", { class: "filters" },
    h("input", { id: "label-filter", placeholder: "label selector, e.g. zone=a", onchange: (e) => { filter.label = e.target.value; filter.offset = 0; renderHosts().catch((x) => showError(x.message)); } }),
    h("input", { id: "host-filter", placeholder: "host id contains", onchange: (e) => { filter.q = e.target.value; filter.offset = 0; renderHosts().catch((x) => showError(x.message)); } }));
  const refresh = async () => { const s = await renderHosts(); await renderTop(s); await renderHistory(); };
  show(h("h1", {}, `App ${name}`), topBox, confirmBox, h("h2", {}, "Hosts"), hostFilters, hostsBox, historyBox);
  await refresh();
  const again = debounce(() => refresh().catch((e) => showError(e.message)), 300);
  follow(`/api/v1/events/stream?app=${app}`, signal, () => again());
}

function pager(total, state, size, reload, extra) {
  const go = (offset) => { state.offset = offset; reload().catch((e) => showError(e.message)); };
  const last = Math.min(total, state.offset + size);
  return h("div", { class: "pager" },
    h("span", {}, total ? `${state.offset + 1}–${last} of ${total}` : "0 of 0"),
    h("button", { type: "button", disabled: state.offset === 0, onclick: () => go(Math.max(0, state.offset - size)) }, "‹ Prev"),
    h("button", { type: "button", disabled: last >= total, onclick: () => go(state.offset + size) }, "Next ›"),
    extra ? h("span", { class: "muted" }, extra) : null);
}

function rolloutsTable(rollouts) {
  return table(["Rollout", "Kind", "Versions", "State", "By", "Started", "Finished", "Reason"],
    rollouts.map((r) => h("tr", {}, h("td", {}, h("a", { href: `#/rollout/${r.id}` }, `#${r.id}`)),
      h("td", {}, `${isConfig(r) ? "config " : ""}${rolloutKind(r)}`),
      h("td", { class: "mono" }, `${r.from_version || "—"} → ${r.version}`), h("td", {}, badge(rolloutState(r))),
      h("td", {}, r.created_by), h("td", {}, fmtTime(r.created_at_ms)), h("td", {}, fmtTime(r.finished_at_ms)),
      h("td", { class: "reason" }, r.reason))), "No rollouts yet.");
}

function eventsTable(events) {
  return table(["When", "Kind", "App", "Rollout", "Host", "Actor", "Message"],
    events.map((e) => h("tr", {}, h("td", {}, fmtTime(e.at_ms)), h("td", { class: "mono" }, e.kind), h("td", {}, e.app || "—"),
      h("td", {}, e.rollout_id ? h("a", { href: `#/rollout/${e.rollout_id}` }, `#${e.rollout_id}`) : "—"),
      h("td", {}, e.host_id || "—"), h("td", {}, e.actor), h("td", { class: "reason" }, e.message))), "No events.");
}

// Asks the controller what a rollback would do (a dry run), then asks the
// user to confirm it, naming the target and the hosts that switch.
async function confirmRollback(app, subject, box) {
  const plan = await act(`/api/v1/apps/${encodeURIComponent(app)}/rollback`, { subject, dry_run: true });
  if (!plan) return;
  const p = plan.progress || { total: 0, changing: 0 };
  const what = subject === "config" ? "config" : "release";
  const card = h("div", { class: "card confirm", id: "confirm" },
    h("p", {}, `Roll back ${what} of ${app} from ${plan.from_version || "(none)"} to ${plan.version}: `,
      h("b", { id: "confirm-count" }, `${p.changing} of ${p.total} hosts will switch`), "."),
    h("div", { class: "actions" },
      h("button", { class: "danger", id: "confirm-rollback", type: "button", onclick: async (e) => {
        const r = await act(`/api/v1/apps/${encodeURIComponent(app)}/rollback`, { subject, to_version: plan.version }, e.target);
        if (r) location.hash = `#/rollout/${r.id}`;
      } }, `Roll back to ${plan.version}`),
      h("button", { type: "button", onclick: () => card.remove() }, "Cancel")));
  box.replaceChildren(card);
}

async function rolloutPage([id], signal) {
  // transitions: updated_at_ms of the host changes not drawn yet.
  const state = { rollout: null, tasks: new Map(), events: [], filter: "", phase: "", offset: 0, transitions: [], eventIds: new Set() };
  const head = h("div", {}), plan = h("div", {}), hosts = h("div", {}), events = h("div", {});
  const filters = h("div", { class: "filters" },
    h("input", { id: "task-filter", placeholder: "host id contains", onchange: (e) => { state.filter = e.target.value; state.offset = 0; draw(); } }),
    h("select", { id: "phase-filter", onchange: (e) => { state.phase = e.target.value; state.offset = 0; draw(); } },
      ["", "done", "failed", "switching", "pending"].map((p) => h("option", { value: p }, p || "every host"))));
  show(head, plan, h("h2", {}, "Hosts"), filters, hosts, events);
  let pending = false;
  const draw = () => {
    if (!state.rollout) return;
    const t0 = performance.now();
    drawRolloutHead(head, state.rollout);
    drawPlan(plan, state.rollout, state.tasks);
    drawTasks(hosts, state, draw);
    drawRolloutEvents(events, state.events);
    const m = window.fleetMetrics;
    m.drawMs.push(performance.now() - t0);
    const now = Date.now();
    for (const at of state.transitions) m.updateLatenciesMs.push(now - at);
    state.transitions = [];
  };
  const schedule = () => { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); } };
  const loadEvents = async (app) => {
    const listed = await api(`/api/v1/events?app=${encodeURIComponent(app)}&limit=1000`);
    const mine = listed.events.filter((e) => e.rollout_id === id && !state.eventIds.has(e.id)).reverse();
    for (const e of mine) state.eventIds.add(e.id);
    state.events = mine.concat(state.events);
  };
  follow(`/api/v1/rollouts/${encodeURIComponent(id)}/watch`, signal, (name, data) => {
    if (name === "end") {
      if (data.error) showError(data.error);
      // The final state as stored, whatever the stream carried last.
      if (!data.error) {
        api(`/api/v1/rollouts/${encodeURIComponent(id)}`).then((r) => {
          applyUpdate(state, { snapshot: true, rollout: r, events: [] });
          schedule();
        }).catch((e) => showError(e.message));
      }
      return data.status === 503 ? undefined : "stop";
    }
    applyUpdate(state, data);
    if (data.snapshot) loadEvents(data.rollout.app).then(schedule).catch((e) => showError(e.message));
    schedule();
    return undefined;
  });
}

// The rollout's analysis results, and its newest events: a rollout of
// thousands of hosts has thousands, which the audit page pages through.
function drawRolloutEvents(box, all) {
  const analysis = all.filter((e) => e.kind.startsWith("analysis."));
  const newest = all.slice(-EVENT_ROWS).reverse();
  box.replaceChildren(
    h("h2", {}, "Analysis"), eventsTable(analysis.slice().reverse()),
    h("h2", {}, "Events"),
    all.length > EVENT_ROWS ? h("p", { class: "muted" }, `The newest ${EVENT_ROWS} of ${all.length}; the Audit page has every one.`) : null,
    eventsTable(newest));
}

// Merges one WatchRollout update into the page's copy of the rollout, and
// notes each host's transition, so that drawing it can tell how long after
// the transition the page showed it.
function applyUpdate(state, update) {
  const r = update.rollout;
  if (update.snapshot) state.tasks = new Map();
  for (const t of r.tasks) {
    state.tasks.set(t.host_id, t);
    if (!update.snapshot && Number(t.updated_at_ms) > 0) state.transitions.push(Number(t.updated_at_ms));
  }
  state.rollout = r;
  for (const e of update.events || []) {
    if (state.eventIds.has(e.id)) continue;
    state.eventIds.add(e.id);
    state.events.push(e);
  }
  window.fleetMetrics.updates++;
}

// The buttons are redrawn only when the state they depend on changes, so
// that an update arriving as the user clicks does not swap them.
function drawRolloutHead(box, r) {
  if (!box.info) {
    box.info = h("div", {});
    box.actions = h("div", { class: "actions" });
    box.replaceChildren(box.info, box.actions);
  }
  const s = rolloutState(r);
  const key = `${s}/${r.awaiting_promote}/${r.kind}`;
  if (box.actionsKey !== key) {
    box.actionsKey = key;
    box.actions.replaceChildren(...rolloutButtons(r));
  }
  const paused = s === "paused" ? ` (${enumName(r.pause_reason, "PAUSE_REASON_")}${r.paused_by ? ` by ${r.paused_by}` : ""})` : "";
  box.info.replaceChildren(
    h("h1", {}, rolloutTitle(r), " ", h("span", { id: "rollout-state" }, badge(s)), paused),
    h("dl", { class: "facts" },
      h("dt", {}, "App"), h("dd", {}, h("a", { href: `#/app/${encodeURIComponent(r.app)}` }, r.app)),
      h("dt", {}, "Started"), h("dd", {}, `${fmtTime(r.created_at_ms)} by ${r.created_by}`),
      h("dt", {}, "Finished"), h("dd", {}, fmtTime(r.finished_at_ms)),
      h("dt", {}, "Selector"), h("dd", { class: "mono" }, r.selector || "every host"),
      h("dt", {}, "Reason"), h("dd", { class: "reason", id: "rollout-reason" }, r.reason || "—")));
}

// The actions `r` allows now, for a token that may act on its app.
function rolloutButtons(r) {
  const s = rolloutState(r);
  const running = !isTerminal(r);
  const buttons = [];
  if (running && canAct(r.app) && rolloutKind(r) !== "catch_up") {
    const button = (name, label, cls) => h("button", { type: "button", id: `action-${name}`, class: cls,
      onclick: (e) => act(`/api/v1/rollouts/${r.id}/${name}`, {}, e.target) }, label);
    if (s === "paused" && r.awaiting_promote) buttons.push(button("promote", "Promote next wave", "primary"));
    if (s === "paused" && !r.awaiting_promote) buttons.push(button("resume", "Resume", "primary"));
    if (s === "staging" || s === "activating") buttons.push(button("pause", "Pause"));
    if (rolloutKind(r) !== "rollback" && s !== "rolling_back") buttons.push(button("abort", "Abort", "danger"));
  }
  return buttons;
}

function phaseCounts(tasks) {
  const c = { done: 0, failed: 0, switching: 0, pending: 0, total: 0 };
  for (const t of tasks) { c[t.phase]++; c.total++; }
  return c;
}

function drawPlan(box, r, tasks) {
  const all = [...tasks.values()];
  const p = r.plan || { waves: [] };
  const rows = (p.waves || []).map((w) => {
    const c = phaseCounts(all.filter((t) => t.wave === w.index));
    const current = w.index === r.current_wave && !isTerminal(r);
    return h("tr", { class: current ? "current" : null },
      h("td", {}, `${current ? "▶ " : ""}${w.index + 1}`), h("td", {}, w.target), h("td", {}, w.hosts),
      h("td", {}, c.done), h("td", {}, c.failed), h("td", {}, c.switching), h("td", {}, c.pending),
      h("td", {}, fmtTime(w.started_at_ms)), h("td", {}, fmtTime(w.finished_at_ms)));
  });
  box.replaceChildren(progressBar(phaseCounts(all)),
    h("h2", {}, "Plan"),
    h("p", { class: "muted" }, `max failures ${p.max_failures_spec || p.max_failures} · bake ${fmtDuration(p.bake_ms || 0)} · host timeout ${fmtDuration(p.host_timeout_ms || 0)}` +
      `${p.max_parallel ? ` · ${p.max_parallel} at once` : ""}${p.manual_promote ? " · manual promote" : ""}`),
    table(["Wave", "Target", "Hosts", "Done", "Failed", "Switching", "Pending", "Started", "Finished"], rows, "No waves."));
}

function drawTasks(box, state, redraw) {
  const matching = [...state.tasks.values()].filter((t) =>
    (!state.filter || t.host_id.includes(state.filter)) && (!state.phase || t.phase === state.phase));
  matching.sort((a, b) => a.wave - b.wave || (a.host_id < b.host_id ? -1 : a.host_id > b.host_id ? 1 : 0));
  const page = matching.slice(state.offset, state.offset + TASK_PAGE);
  const rows = page.map((t) => h("tr", { "data-host": t.host_id },
    h("td", {}, t.host_id), h("td", {}, t.wave + 1), h("td", {}, badge(enumName(t.state, "TASK_STATE_"))),
    h("td", { class: "mono" }, `${t.from_version || "—"} → ${t.to_version}`),
    h("td", { class: "reason" }, t.reason), h("td", {}, fmtTime(t.updated_at_ms))));
  box.replaceChildren(pager(matching.length, state, TASK_PAGE, async () => redraw()),
    table(["Host", "Wave", "State", "Versions", "Reason", "Updated"], rows, "No host matches."));
}

async function hostsPage(_, signal) {
  const filter = { label: "", q: "", app: "", connected: "", offset: 0 };
  const box = h("div", {});
  const render = async () => {
    const qs = new URLSearchParams({ label: filter.label, q: filter.q, app: filter.app, offset: filter.offset, limit: HOST_PAGE });
    if (filter.connected) qs.set("connected", filter.connected);
    const s = await api(`/api/v1/hosts?${qs}`);
    if (signal.aborted) return;
    const rows = s.hosts.map((x) => h("tr", {},
      h("td", {}, x.id), h("td", { class: "mono" }, Object.entries(x.labels || {}).map(([k, v]) => `${k}=${v}`).join(" ")),
      h("td", {}, badge(x.connected ? "connected" : "disconnected")),
      h("td", {}, `${fmtTime(x.last_seen_ms)} (${fmtAgo(x.last_seen_ms)})`), h("td", { class: "mono" }, x.agent_version || "—"),
      h("td", { class: "mono" }, (x.apps || []).map((a) => `${a.app} ${a.current_release || "—"}${a.current_config ? `/${a.current_config}` : ""}`).join(", "))));
    box.replaceChildren(pager(s.matched, filter, HOST_PAGE, render, `${s.hosts_connected}/${s.hosts_total} connected`),
      table(["Host", "Labels", "Connected", "Last seen", "Agent", "Apps"], rows, "No host matches."));
  };
  const set = (key) => (e) => { filter[key] = e.target.value; filter.offset = 0; render().catch((x) => showError(x.message)); };
  show(h("h1", {}, "Hosts"),
    h("div", { class: "filters" },
      h("input", { placeholder: "label selector, e.g. zone=a", onchange: set("label") }),
      h("input", { placeholder: "host id contains", onchange: set("q") }),
      h("input", { placeholder: "app", onchange: set("app") }),
      h("select", { onchange: set("connected") }, h("option", { value: "" }, "connected or not"),
        h("option", { value: "true" }, "connected"), h("option", { value: "false" }, "disconnected"))),
    box);
  await render();
  const again = debounce(() => render().catch((e) => showError(e.message)), 500);
  follow("/api/v1/events/stream", signal, (name, e) => { if (e.kind && e.kind.startsWith("host.")) again(); });
}

async function auditPage(_, signal) {
  const filter = { app: "", kind: "", actor: "" };
  let events = [], more = false;
  const box = h("div", {});
  const draw = () => box.replaceChildren(eventsTable(events),
    more ? h("button", { type: "button", onclick: () => load(events[events.length - 1].id).catch((e) => showError(e.message)) }, "Older events") : null);
  const load = async (before) => {
    const qs = new URLSearchParams({ app: filter.app, kind: filter.kind, actor: filter.actor, limit: 100 });
    if (before) qs.set("before_id", before);
    const page = await api(`/api/v1/events?${qs}`);
    if (signal.aborted) return;
    events = before ? events.concat(page.events) : page.events;
    more = page.more;
    draw();
  };
  const set = (key) => (e) => { filter[key] = e.target.value.trim(); load().catch((x) => showError(x.message)); };
  show(h("h1", {}, "Audit"),
    h("div", { class: "filters" },
      h("input", { id: "audit-app", placeholder: "app", onchange: set("app") }),
      h("input", { id: "audit-kind", placeholder: "kind or group: auth.denied, token, rollout", onchange: set("kind") }),
      h("input", { id: "audit-actor", placeholder: "actor contains", onchange: set("actor") })),
    box);
  await load();
  const again = debounce(() => load().catch((e) => showError(e.message)), 500);
  follow("/api/v1/events/stream", signal, () => again());
}

// ---- start --------------------------------------------------------------

document.getElementById("signout").addEventListener("click", () => signOut(""));
window.addEventListener("hashchange", route);
start();
