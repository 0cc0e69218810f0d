// The hyperlaw dashboard page: three views (studies, one study, one trial) routed by the URL
// hash, fed by the JSON API, and kept live by polling the study's cursor. Plots are Plotly
// figures built on the server; a panel the server lists is drawn without code of its own here.
"use strict";

const CONFIG = Object.assign({ pollMs: 1000 }, window.HYPERLAW_CONFIG || {});
const view = document.getElementById("view");
const crumbs = document.getElementById("crumbs");
const live = document.getElementById("live");
const PLOT_CONFIG = { responsive: true, displaylogo: false };
const STATES = ["complete", "pruned", "failed", "running", "waiting"];
let current = null; // the active view: { stop() }
// when each part of the page finished (ms since navigation start), for benchmarks
window.hyperlawTimings = {};

// --- helpers -------------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, params = {}) {
  const query = new URLSearchParams(params).toString();
  const response = await fetch(`/api/${path}${query ? "?" + query : ""}`,
                               { credentials: "same-origin" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function fmt(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    return Math.abs(value) >= 1e5 || (Math.abs(value) < 1e-3 && value !== 0)
      ? value.toExponential(4) : String(Number(value.toPrecision(6)));
  }
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function when(seconds) {
  if (!seconds) return "–";
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  return seconds < 120 ? `${seconds.toFixed(2)} s` : `${(seconds / 60).toFixed(1)} min`;
}

// Plotly's cartesian bundle (1.5 MB: scatter, bar, contour) loads once, on the first page
// that draws, while that page fetches its data.
let plotlyLoading = null;
function loadPlotly() {
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      const script = el("script", { src: "/static/plotly-cartesian.min.js" });
      script.onload = () => {
        window.hyperlawTimings.plotlyLoaded = performance.now();
        resolve(window.Plotly);
      };
      script.onerror = () => reject(new Error("cannot load /static/plotly-cartesian.min.js"));
      document.head.append(script);
    });
  }
  return plotlyLoading;
}

async function draw(node, figure) {
  const Plotly = await loadPlotly();
  await Plotly.react(node, figure.data, figure.layout, PLOT_CONFIG);
}

function purge(node) { if (window.Plotly) window.Plotly.purge(node); }

function badge(state) { return el("span", { class: `badge ${state}` }, state); }
function studyHref(name) { return `#/study/${encodeURIComponent(name)}`; }
function trialHref(name, number) { return `${studyHref(name)}/trial/${number}`; }

function setCrumbs(...parts) {
  crumbs.replaceChildren(...parts.flatMap((p, i) => (i ? [" / ", p] : [p])));
}

function setLive(ok, text) {
  live.classList.toggle("stale", !ok);
  live.textContent = text;
}

function markReady(name) {
  document.body.dataset.ready = name;
  if (window.hyperlawReadyAt === undefined) window.hyperlawReadyAt = performance.now();
}

// A poller that runs `tick` every pollMs until stopped; ticks never overlap.
function poller(tick) {
  let stopped = false;
  let timer = null;
  const loop = async () => {
    if (stopped) return;
    try { await tick(); setLive(true, "live"); }
    catch (err) { setLive(false, `offline: ${err.message}`); }
    if (!stopped) timer = setTimeout(loop, CONFIG.pollMs);
  };
  timer = setTimeout(loop, CONFIG.pollMs);
  return { stop() { stopped = true; clearTimeout(timer); } };
}

// --- studies -------------------------------------------------------------------------------
function studiesView() {
  setCrumbs("studies");
  const body = el("tbody");
  const table = el("table", { id: "studies" },
    el("thead", {}, el("tr", {},
      el("th", {}, "study"), el("th", {}, "direction"),
      ...STATES.map((s) => el("th", { class: "num" }, s)),
      el("th", { class: "num" }, "trials"), el("th", { class: "num" }, "best value"),
      el("th", {}, "last activity"))),
    body);
  view.replaceChildren(el("h1", {}, "Studies"), el("div", { class: "scroll card" }, table));
  let last = "";
  const render = async () => {
    const data = await api("studies");
    const text = JSON.stringify(data);
    if (text === last) return;
    last = text;
    body.replaceChildren(...data.studies.map((s) => el("tr", {
      class: "clickable", "data-study": s.name, onclick: () => { location.hash = studyHref(s.name); },
    },
      el("td", {}, el("a", { href: studyHref(s.name) }, s.name)),
      el("td", {}, (s.directions || [s.direction]).join(", ")),
      ...STATES.map((st) => el("td", { class: `num count-${st}` }, s.counts[st] || 0)),
      el("td", { class: "num total" }, s.n_trials),
      el("td", { class: "num best" }, fmt(s.best_value)),
      el("td", {}, when(s.last_activity)))));
    if (!data.studies.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 10, class: "muted" },
        "no studies in this storage yet")));
    }
    markReady("studies");
  };
  render().catch(showError);
  return poller(render);
}

// --- one study -----------------------------------------------------------------------------
function studyView(name) {
  setCrumbs(el("a", { href: "#/" }, "studies"), name);
  const summaryBox = el("div", { class: "summary", id: "summary" });
  const panelBox = el("div", { class: "panels", id: "panels" });
  const table = trialTable(name);
  view.replaceChildren(el("h1", {}, name), summaryBox, panelBox, table.node);
  const panels = new Map(); // id -> { spec, plot, choices, query }
  let cursor = null;

  const drawPanel = async (panel) => {
    try {
      const started = performance.now();
      const figure = await api(`study/panel/${panel.spec.id}`, { study: name, ...panel.query });
      const fetched = performance.now();
      // the card names the panel; a figure's own height (e.g. many slices) sizes the card
      const layout = Object.assign({}, figure.layout, { title: undefined });
      panel.plot.style.height = `${layout.height || 360}px`;
      await draw(panel.plot, { data: figure.data, layout });
      window.hyperlawTimings[panel.spec.id] = {
        started, fetchMs: fetched - started, drawnAt: performance.now() };
      panel.message.textContent = "";
      panel.node.dataset.points = String(
        (figure.data[0] && figure.data[0].x) ? figure.data[0].x.length : 0);
    } catch (err) {
      panel.message.textContent = err.message;
    }
  };

  const ensurePanels = (specs) => {
    for (const spec of specs) {
      if (panels.has(spec.id)) continue;
      const plot = el("div", { class: "plot", id: `plot-${spec.id}` });
      const message = el("div", { class: "error" });
      const controls = el("div", { class: "controls" });
      const node = el("section", { class: `panel card${spec.wide ? " wide" : ""}`,
                                   id: `panel-${spec.id}` },
        el("h2", {}, spec.title), controls, message, plot);
      const panel = { spec, plot, node, message, query: {} };
      for (const [key, options] of Object.entries(spec.choices || {})) {
        panel.query[key] = options[0];
        const select = el("select", { name: key, onchange: (e) => {
          panel.query[key] = e.target.value; drawPanel(panel);
        } }, ...options.map((o) => el("option", { value: o }, o)));
        controls.append(el("label", {}, `${key}: `, select));
      }
      panels.set(spec.id, panel);
      panelBox.append(node);
    }
  };

  const renderSummary = (s) => {
    const stat = (label, value, id) => el("div", { class: "stat", id },
      el("div", { class: "label" }, label), el("div", { class: "value" }, value));
    const several = s.directions && s.directions.length > 1;
    const best = s.best
      ? el("a", { href: trialHref(name, s.best.number) }, `${fmt(s.best.value)} (#${s.best.number})`)
      : "–";
    summaryBox.replaceChildren(
      several
        ? stat("directions", s.objectives.map((o, j) => `${o}: ${s.directions[j]}`).join(", "),
               "stat-direction")
        : stat("direction", s.direction, "stat-direction"),
      stat("trials", s.n_trials, "stat-trials"),
      ...STATES.map((st) => stat(st, s.counts[st] || 0, `stat-${st}`)),
      several ? stat("Pareto front", `${s.front.length} trials`, "stat-front")
              : stat("best value", best, "stat-best"),
      stat("last activity", when(s.last_activity), "stat-last"));
  };

  const update = async (first) => {
    const s = await api("study", { study: name });
    if (!first && s.cursor === cursor) return;
    cursor = s.cursor;
    renderSummary(s);
    ensurePanels(s.panels);
    await Promise.all([...[...panels.values()].map(drawPanel), table.refresh()]);
    document.body.dataset.cursor = String(cursor);
    markReady("study");
  };
  update(true).catch(showError);
  const poll = poller(() => update(false));
  loadPlotly().catch(showError);
  return { stop() { poll.stop(); for (const p of panels.values()) purge(p.plot); } };
}

function trialTable(name) {
  const state = { offset: 0, limit: 25, sort: "number", order: "desc", state: "", filter: "" };
  const head = el("thead");
  const body = el("tbody");
  const info = el("span", { class: "muted", id: "table-info" });
  const message = el("div", { class: "message" });
  const filter = el("input", { type: "text", id: "table-filter",
    placeholder: "filter, e.g. value < 0.5, params.lr > 1e-3" });
  const stateSelect = el("select", { id: "table-state" }, el("option", { value: "" }, "all states"),
    ...STATES.map((s) => el("option", { value: s }, s)));
  const reload = () => { state.offset = 0; refresh(); };
  filter.addEventListener("change", () => { state.filter = filter.value; reload(); });
  stateSelect.addEventListener("change", () => { state.state = stateSelect.value; reload(); });
  const prev = el("button", { id: "page-prev", onclick: () => {
    state.offset = Math.max(0, state.offset - state.limit); refresh(); } }, "‹ previous");
  const next = el("button", { id: "page-next", onclick: () => {
    state.offset += state.limit; refresh(); } }, "next ›");
  const node = el("section", { class: "card table-card", id: "trials" },
    el("h2", {}, "Trials"),
    el("div", { class: "toolbar" }, filter, stateSelect, info), message,
    el("div", { class: "scroll" }, el("table", { id: "trial-table" }, head, body)),
    el("div", { class: "pager" }, prev, next));

  const header = (key, label, numeric) => {
    const sorted = state.sort === key ? ` sorted-${state.order}` : "";
    return el("th", { class: `sortable${numeric ? " num" : ""}${sorted}`, "data-sort": key,
      onclick: () => {
        if (state.sort === key) state.order = state.order === "asc" ? "desc" : "asc";
        else { state.sort = key; state.order = "asc"; }
        reload();
      } }, label);
  };

  async function refresh() {
    let page;
    try {
      page = await api("study/trials", { study: name, ...state });
      message.textContent = "";
    } catch (err) { message.textContent = err.message; return; }
    // one column per objective when there are several, and the violation with constraints
    const objectives = page.objectives || [];
    const valueHeads = objectives.length
      ? objectives.map((o, j) => header(`values.${j}`, o, true)) : [header("value", "value", true)];
    const valueCells = (r) => objectives.length
      ? objectives.map((o, j) => el("td", { class: "num" }, fmt(r.values && r.values[j])))
      : [el("td", { class: "num" }, fmt(r.value))];
    head.replaceChildren(el("tr", {}, header("number", "#", true), header("state", "state"),
      ...valueHeads,
      ...(page.constrained ? [header("violation", "violation", true)] : []),
      ...page.params.map((p) => header(`params.${p}`, p, true)),
      header("duration", "duration", true), header("last_step", "last step", true)));
    body.replaceChildren(...page.rows.map((r) => el("tr", {
      class: "clickable", "data-number": r.number,
      onclick: () => { location.hash = trialHref(name, r.number); } },
      el("td", { class: "num" }, r.number), el("td", {}, badge(r.state)),
      ...valueCells(r),
      ...(page.constrained ? [el("td", { class: "num" }, fmt(r.violation))] : []),
      ...page.params.map((p) => el("td", { class: "num" }, fmt(r.params[p]))),
      el("td", { class: "num" }, duration(r.duration)),
      el("td", { class: "num" }, fmt(r.last_step)))));
    const end = Math.min(page.offset + page.limit, page.total);
    info.textContent = page.total
      ? `${page.offset + 1}–${end} of ${page.total} trials` : "no trials match";
    prev.disabled = page.offset === 0;
    next.disabled = end >= page.total;
  }
  return { node, refresh };
}

// --- one trial -----------------------------------------------------------------------------
function trialView(name, number) {
  setCrumbs(el("a", { href: "#/" }, "studies"), el("a", { href: studyHref(name) }, name),
            `trial ${number}`);
  const plot = el("div", { class: "plot", id: "trial-plot", style: "height:340px" });
  const details = el("div", { id: "trial-details" });
  view.replaceChildren(el("h1", {}, `Trial ${number}`), el("div", { class: "grid2" },
    details, el("div", { class: "card" }, plot)));
  const kv = (title, entries) => el("div", { class: "card", style: "margin-bottom:14px" },
    el("h2", {}, title), entries.length ? el("table", { class: "kv" }, el("tbody", {},
      ...entries.map(([k, v]) => el("tr", { "data-key": k }, el("td", {}, k),
        el("td", {}, v instanceof Node ? v : fmt(v)))))) : el("p", { class: "muted" }, "none"));
  let last = "";
  const render = async () => {
    const t = await api(`study/trial/${number}`, { study: name });
    const text = JSON.stringify(t);
    if (text === last) return;
    last = text;
    // several objectives, constraints and cost, when the trial has them
    const values = t.values ? [["values", t.values.map(fmt).join(", ")]] : [];
    const violation = t.constraints ? [["violation", t.violation]] : [];
    const constraints = t.constraints ? [el("div", { id: "trial-constraints" },
      kv("Constraints", Object.entries(t.constraints).map(([k, c]) => [k,
        `${fmt(c.value)} (${c.min === null ? "" : `min ${fmt(c.min)} `}` +
        `${c.max === null ? "" : `max ${fmt(c.max)}`})`.replace(" )", ")")])))] : [];
    details.replaceChildren(
      kv("Result", [["state", badge(t.state)], ["value", t.value], ...values, ...violation,
        ["intermediate values", t.n_intermediate], ["started", when(t.started_at)],
        ["finished", when(t.finished_at)], ["duration", duration(t.duration)]]),
      ...constraints,
      ...(t.cost ? [el("div", { id: "trial-cost" }, kv("Cost", Object.entries(t.cost)))] : []),
      el("div", { id: "trial-params" }, kv("Parameters", Object.entries(t.params))),
      el("div", { id: "trial-user-attrs" }, kv("User attributes", Object.entries(t.user_attrs))),
      kv("System attributes", Object.entries(t.system_attrs)),
      ...(t.error ? [el("div", { class: "card", id: "trial-error" }, el("h2", {}, "Error"),
        el("pre", { class: "error-text" }, t.error))] : []));
    await draw(plot, t.figure);
    markReady("trial");
  };
  render().catch(showError);
  const poll = poller(render);
  loadPlotly().catch(showError);
  return { stop() { poll.stop(); purge(plot); } };
}

// --- routing -------------------------------------------------------------------------------
function showError(err) {
  view.replaceChildren(el("h1", {}, "Cannot show this page"),
    el("p", { class: "message", id: "page-error" }, err.message),
    el("p", {}, el("a", { href: "#/" }, "back to the studies")));
  markReady("error");
}

function route() {
  if (current) current.stop();
  delete document.body.dataset.ready;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "study" && parts[1] && parts[2] === "trial" && parts[3] !== undefined) {
    current = trialView(parts[1], Number(parts[3]));
  } else if (parts[0] === "study" && parts[1]) {
    current = studyView(parts[1]);
  } else {
    current = studiesView();
  }
}

window.addEventListener("hashchange", route);
route();
