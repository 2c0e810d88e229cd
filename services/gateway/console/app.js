// The cxloop console: one page, four views, the gateway's console API with
// the session cookie (docs/adr/0110). Every text is in i18n.js (en, ko);
// every value from the API goes in through textContent, never as HTML.
import { MESSAGES } from "./i18n.js";
import { barChart, flowChart, lineChart } from "./chart.js";

const state = { session: null, lang: pickLang(), view: "" };
const VIEWS = [
  { id: "overview", nav: "navOverview", needs: "analytics:read", render: renderOverview },
  { id: "customer", nav: "navCustomer", needs: "customer:read", render: renderCustomer },
  { id: "review", nav: "navReview", needs: "customer:act", render: renderReview },
  { id: "journeys", nav: "navJourneys", needs: "analytics:read", render: renderJourneys },
  { id: "experiments", nav: "navExperiments", needs: "analytics:read", render: renderExperiments },
];

function pickLang() {
  const saved = localStorage.getItem("cxloop.lang");
  if (saved === "en" || saved === "ko") return saved;
  return (navigator.language || "en").toLowerCase().startsWith("ko") ? "ko" : "en";
}

function t(key, vars = {}) {
  const text = MESSAGES[state.lang][key] ?? MESSAGES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}

// h("p", {class: "x"}, "text", child, ...): a DOM node; strings become text.
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function can(permission) {
  return Boolean(state.session && state.session.permissions.includes(permission));
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { ...headers } };
  if (method !== "GET") init.headers["X-CSRF-Token"] = state.session?.csrfToken ?? "";
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  let data = null;
  try { data = await r.json(); } catch { data = null; }
  if (r.status === 401 && state.session && !path.endsWith("/session")) {
    state.session = null;
    toast(t("sessionEnded"));
    render();
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

function toast(text) {
  const box = document.getElementById("toast");
  box.textContent = text;
  setTimeout(() => { if (box.textContent === text) box.textContent = ""; }, 6000);
}

function errorBox(err) {
  const msg = err instanceof ApiError ? err.message : String(err);
  const status = err instanceof ApiError ? err.status : 0;
  const text = status === 403 ? t("forbidden", { msg }) : t("error", { status, msg });
  return h("p", { class: "error", role: "alert" }, text);
}

function missingBox(missing) {
  if (!missing || missing.length === 0) return null;
  return h("div", { class: "card missing", id: "missing", role: "note" },
    h("ul", {}, missing.map((m) =>
      h("li", { "data-part": m.part }, t("notAvailableBecause", { part: m.part, service: m.service, reason: m.reason })))));
}

function table(headers, rows, attrs = {}) {
  return h("div", { class: "table-wrap" }, h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))))));
}

const num = (v) => (v === null || v === undefined || v === "" ? "—" : Number(v).toLocaleString(state.lang === "ko" ? "ko-KR" : "en-US"));
const pct = (v) => (v === null || v === undefined ? "—" : `${(Number(v) * 100).toFixed(1)}%`);
const enumName = (v, prefix) => String(v ?? "").replace(prefix, "").toLowerCase().replaceAll("_", " ");
const day = (iso) => (iso ? String(iso).slice(0, 10) : "—");

// -- chrome -------------------------------------------------------------------

function chrome() {
  document.documentElement.lang = state.lang;
  document.title = t("brand");
  document.getElementById("brand").textContent = t("brand");
  document.getElementById("skip-link").textContent = t("skip");
  const lang = document.getElementById("lang");
  lang.textContent = t("langButton");
  lang.title = t("langLabel");
  lang.setAttribute("lang", state.lang === "en" ? "ko" : "en");
  const nav = document.getElementById("nav");
  const logout = document.getElementById("logout");
  const who = document.getElementById("whoami");
  nav.replaceChildren();
  if (!state.session) {
    nav.hidden = true; logout.hidden = true; who.textContent = "";
    return;
  }
  nav.hidden = false; logout.hidden = false;
  logout.textContent = t("logout");
  who.textContent = t("signedInAs", { name: state.session.name, role: t(`role_${state.session.role}`) });
  for (const v of VIEWS) {
    if (!can(v.needs)) continue;
    nav.append(h("a", { href: `#/${v.id}`, id: `nav-${v.id}`, "aria-current": state.view === v.id ? "page" : false }, t(v.nav)));
  }
}

function currentView() {
  const id = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const allowed = VIEWS.filter((v) => can(v.needs));
  return VIEWS.find((v) => v.id === id) || allowed[0] || VIEWS[0];
}

function render() {
  const main = document.getElementById("main");
  if (!state.session) {
    state.view = "";
    chrome();
    main.replaceChildren(renderLogin());
    return;
  }
  const view = currentView();
  state.view = view.id;
  chrome();
  const section = h("section", { id: `view-${view.id}`, "aria-labelledby": "view-title" });
  main.replaceChildren(section);
  if (!can(view.needs)) {
    section.append(h("h1", { id: "view-title" }, t(view.nav)),
      h("p", { class: "error", role: "alert", id: "not-allowed" }, t("notAllowed", { role: t(`role_${state.session.role}`) })));
    return;
  }
  view.render(section);
}

// -- login ----------------------------------------------------------------------

function renderLogin() {
  const status = h("div", { id: "login-status", "aria-live": "assertive" });
  const input = h("input", { id: "api-key", name: "apiKey", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h("form", { id: "login-form", class: "card login", onsubmit: async (e) => {
    e.preventDefault();
    status.replaceChildren();
    try {
      const r = await fetch("/v1/console/session", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ apiKey: input.value.trim() }),
      });
      const body = await r.json().catch(() => null);
      if (!r.ok) throw new ApiError(r.status, body);
      input.value = "";
      state.session = body;
      if (!location.hash) location.hash = "#/";
      render();
    } catch (err) {
      status.append(h("p", { class: "error", role: "alert" }, t("loginFailed", { msg: err.message })));
    }
  } },
  h("h1", { id: "view-title" }, t("loginTitle")),
  h("p", { class: "muted" }, t("loginHelp")),
  h("label", { for: "api-key" }, t("apiKey"), input),
  h("p", {}, h("button", { type: "submit" }, t("loginButton"))),
  status);
  return form;
}

// -- customer ---------------------------------------------------------------------

function renderCustomer(section) {
  const out = h("div", { id: "customer-result", "aria-live": "polite" });
  const kind = h("select", { id: "find-kind", name: "kind" },
    ["email", "phone", "userId", "customerId"].map((k) => h("option", { value: k }, t(k))));
  const value = h("input", { id: "find-value", name: "value", required: true, autocomplete: "off" });
  const reason = h("input", { id: "find-reason", name: "reason", required: true, maxlength: 200, "aria-describedby": "reason-help" });
  const form = h("form", { id: "customer-form", class: "card row", onsubmit: async (e) => {
    e.preventDefault();
    out.replaceChildren(h("p", {}, t("loading")));
    if (!reason.value.trim()) { out.replaceChildren(h("p", { class: "error", role: "alert" }, t("reasonRequired"))); return; }
    const v = value.value.trim();
    const path = kind.value === "customerId"
      ? `/v1/customers/${encodeURIComponent(v)}`
      : `/v1/customers?${new URLSearchParams({ [kind.value]: v })}`;
    try {
      const c = await api(path, { headers: { "X-Cxloop-Reason": reason.value.trim() } });
      out.replaceChildren(customer360(c, reason.value.trim(), { kind: kind.value, value: v }));
    } catch (err) {
      out.replaceChildren(err.status === 404 ? h("p", { class: "error", role: "alert" }, t("noCustomer")) : errorBox(err));
    }
  } },
  h("label", { for: "find-kind" }, t("findBy"), kind),
  h("label", { for: "find-value", class: "grow" }, t("value"), value),
  h("label", { for: "find-reason" }, t("reason"), reason),
  h("button", { type: "submit" }, t("find")),
  h("span", { id: "reason-help", class: "muted" }, t("reasonHelp")));
  section.append(h("h1", { id: "view-title" }, t("customerTitle")), form, out);
}

// A list, or "None" when it is empty.
function listOr(items, ordered = false) {
  if (!items.length) return h("p", { class: "muted" }, t("none"));
  return h(ordered ? "ol" : "ul", {}, items.map((x) => h("li", {}, x)));
}

function part(title, id, body) {
  return h("section", { class: "card", id, "aria-label": title }, h("h2", {}, title), body);
}

function unavailablePart(title, id, c, name) {
  const m = (c.missing || []).find((x) => x.part === name);
  return part(title, id, h("p", { class: "muted" }, m ? t("notAvailableBecause", { part: m.part, service: m.service, reason: m.reason }) : t("none")));
}

function customer360(c, reason, lookup = {}) {
  const wrap = h("div", { id: "c360", "data-customer-id": c.customerId });
  wrap.append(h("div", { class: "card" },
    h("h2", {}, `${t("customerId")}: `, h("code", { id: "c360-id" }, c.customerId)),
    h("p", { class: c.complete ? "ok" : "muted", id: "c360-complete" }, c.complete ? t("complete") : t("partial"))));
  wrap.append(missingBox(c.missing) || "");
  const grid = h("div", { class: "grid" });
  wrap.append(grid);
  const p = c.profile;
  grid.append(p ? part(t("profile"), "part-profile", h("div", {},
    table([t("identifiers"), ""], (p.identifiers || []).map((i) => [enumName(i.type, "IDENTIFIER_TYPE_"), i.namespace || ""])),
    (p.goldenRecord || []).length ? table([t("traits"), ""], p.goldenRecord.map((g) => [g.name, g.value])) : "",
  )) : unavailablePart(t("profile"), "part-profile", c, "profile"));
  grid.append(c.consent ? part(t("consent"), "part-consent",
    table([t("purpose"), t("decision")], (c.consent.purposes || []).map((x) => [x.purpose, enumName(x.decision, "CONSENT_DECISION_")])))
    : unavailablePart(t("consent"), "part-consent", c, "consent"));
  const l = c.loyalty;
  grid.append(l ? part(t("loyalty"), "part-loyalty", h("div", {},
    h("p", {}, `${t("available")}: `, h("strong", { id: "points-available" }, num(l.availablePoints)), ` · ${t("pending")}: ${num(l.pendingPoints)} · ${t("tier")}: ${l.tier || "—"}`),
    table([t("when"), t("kind"), t("points")], ((l.history || {}).entries || []).slice(0, 10).map((e) => [day(e.occurredAt), enumName(e.kind, "LEDGER_ENTRY_KIND_"), num(e.points)])),
  )) : unavailablePart(t("loyalty"), "part-loyalty", c, "loyalty"));
  grid.append(c.recommendations ? part(t("recommendations"), "part-recommendations",
    listOr(((c.recommendations.items) || []).slice(0, 8).map((i) => i.itemId), true))
    : unavailablePart(t("recommendations"), "part-recommendations", c, "recommendations"));
  grid.append(c.segments ? part(t("segments"), "part-segments",
    listOr(((c.segments.segments) || []).map((s) => s.segmentId)))
    : unavailablePart(t("segments"), "part-segments", c, "segments"));
  grid.append(c.traits ? part(t("traits"), "part-traits", h("p", {}, `${t("lifecycle")}: ${c.traits.lifecycleStage || "—"}`))
    : unavailablePart(t("traits"), "part-traits", c, "traits"));
  const pr = c.predictions && c.predictions.predictions;
  grid.append(c.predictions ? part(t("predictions"), "part-predictions", h("p", {},
    `${t("clv")}: ${pr ? num(Math.round(pr.predictedClv)) : "—"} · ${t("churn")}: ${pr && pr.churnProbability >= 0 ? pct(pr.churnProbability) : "—"}`))
    : unavailablePart(t("predictions"), "part-predictions", c, "predictions"));
  grid.append(c.cases ? part(t("cases"), "part-cases", casesList(c.customerId, c.cases.cases || [], reason))
    : unavailablePart(t("cases"), "part-cases", c, "cases"));
  const j = c.journey;
  grid.append(j ? part(t("journey"), "part-journey", h("div", {},
    h("p", {}, t("journeyTotals", { n: num(j.totalEvents), first: day(j.firstSeen), last: day(j.lastSeen) })),
    (j.channels || []).length ? barChart(j.channels.map((x) => ({ label: x.channel || "—", value: Number(x.events) })), t("byChannel")) : "",
    (j.events || []).length
      ? table([t("when"), t("event"), t("channel")], j.events.slice(0, 10).map((e) => [day(e.occurredAt), e.event || e.kind, e.channel]), { id: "journey-table" })
      : listOr([])))
    : unavailablePart(t("journey"), "part-journey", c, "journey"));
  const actions = customerActions(c.customerId, reason, lookup);
  if (actions) wrap.append(actions);
  return wrap;
}

// Each case: status, priority, subject; an open one can be resolved with a
// note saying what was done (customer:act).
function casesList(customerId, cases, reason) {
  if (!cases.length) return listOr([]);
  const open = (x) => !["CASE_STATUS_RESOLVED", "CASE_STATUS_CLOSED"].includes(x.status);
  return h("ul", { class: "plain", id: "case-list" }, cases.map((x, n) => {
    const status = h("div", { "aria-live": "polite", id: `case-status-${n}` });
    const li = h("li", { "data-case-id": x.caseId },
      h("p", {}, h("span", { class: "badge", id: `case-state-${n}` }, enumName(x.status, "CASE_STATUS_")), " ",
        `${enumName(x.priority, "CASE_PRIORITY_")} · ${x.subject || ""}`),
      x.resolution ? h("p", { class: "muted" }, `${t("resolution")}: ${x.resolution}`) : "");
    if (can("customer:act") && open(x)) {
      const note = h("textarea", { id: `case-resolution-${n}`, required: true, maxlength: 2000 });
      const notify = h("input", { id: `case-notify-${n}`, type: "checkbox" });
      li.append(h("form", { class: "case-form", id: `case-form-${n}`, onsubmit: async (e) => {
        e.preventDefault();
        status.replaceChildren();
        try {
          const r = await api(`/v1/customers/${encodeURIComponent(customerId)}/cases/${encodeURIComponent(x.caseId)}`, {
            method: "POST", headers: { "X-Cxloop-Reason": reason },
            body: { status: "resolved", resolution: note.value.trim(), notifyCustomer: notify.checked },
          });
          document.getElementById(`case-state-${n}`).textContent = enumName(r.status, "CASE_STATUS_");
          e.target.replaceWith(h("p", { class: "ok", id: `case-resolved-${n}` }, t("caseResolved")));
        } catch (err) { status.append(errorBox(err)); }
      } },
      h("label", { for: `case-resolution-${n}` }, t("resolution"), note),
      h("label", { for: `case-notify-${n}`, class: "inline" }, notify, h("span", {}, t("notifyCustomer"))),
      h("p", {}, h("button", { type: "submit" }, t("resolveCase")))));
      li.append(status);
    }
    return li;
  }));
}

const ID_TYPES = ["email", "phone", "userId", "anonymousId", "loyaltyCard", "external"];

function identifierFields(prefix, legend, preset = {}) {
  const type = h("select", { id: `${prefix}-type` }, ID_TYPES.map((k) => h("option", { value: k, selected: preset.kind === k }, t(k))));
  const value = h("input", { id: `${prefix}-value`, required: true, autocomplete: "off", value: preset.value || "" });
  const ns = h("input", { id: `${prefix}-namespace`, autocomplete: "off", maxlength: 64 });
  const box = h("fieldset", { class: "row" }, h("legend", {}, legend),
    h("label", { for: `${prefix}-type` }, t("idType"), type),
    h("label", { for: `${prefix}-value`, class: "grow" }, t("value"), value),
    h("label", { for: `${prefix}-namespace` }, t("namespace"), ns));
  return { box, read: () => ({ type: type.value, value: value.value.trim(), namespace: ns.value.trim() }) };
}

// identity's Explain: the path of links and merges, with the evidence.
function explanation(x) {
  const card = h("div", { id: "explain-answer" },
    h("p", { class: x.sameCustomer ? "ok" : "muted", id: "explain-same" }, x.sameCustomer ? t("sameCustomer") : t("notSameCustomer")));
  const steps = x.path || [];
  card.append(table([t("step"), t("rule"), t("source"), t("when"), t("evidence")], steps.map((p) => [
    p.kind === "KIND_MERGE" ? t("mergedInto", { from: p.fromCustomerId, to: p.customerId })
      : p.kind === "KIND_BLOCKED" ? t("blockedLink", { id: enumName(p.identifier?.type, "IDENTIFIER_TYPE_"), to: p.customerId })
        : t("linkedTo", { id: `${enumName(p.identifier?.type, "IDENTIFIER_TYPE_")} ${String(p.identifier?.hash || "").slice(0, 8)}…`, to: p.customerId }),
    p.rule || "", p.source || "", day(p.at),
    p.matchProbability ? `${pct(p.matchProbability)} (${(p.matchWeights || []).map((w) => `${w.field} ${w.level}`).join(", ")})` : "",
  ]), { id: "explain-table" }));
  return card;
}

function explainForm(reason, preset, ids = "explain") {
  const status = h("div", { "aria-live": "polite", id: `${ids}-result` });
  const a = identifierFields(`${ids}-a`, t("identifierA"), preset.kind && preset.kind !== "customerId" ? preset : {});
  const b = identifierFields(`${ids}-b`, t("identifierB"));
  return h("form", { id: `${ids}-form`, onsubmit: async (e) => {
    e.preventDefault();
    status.replaceChildren(h("p", {}, t("loading")));
    try {
      const r = await api("/v1/console/identity/explain", { method: "POST", headers: { "X-Cxloop-Reason": reason }, body: { a: a.read(), b: b.read() } });
      status.replaceChildren(explanation(r));
    } catch (err) { status.replaceChildren(errorBox(err)); }
  } },
  h("h3", {}, t("whyLinked")), h("p", { class: "muted" }, t("whyLinkedHelp")), a.box, b.box,
  h("p", {}, h("button", { type: "submit" }, t("explain"))), status);
}

function customerActions(customerId, reason, lookup = {}) {
  const blocks = [];
  if (can("customer:read")) blocks.push(explainForm(reason, lookup));
  if (can("customer:act")) {
    const status = h("div", { "aria-live": "polite", id: "points-status" });
    const pts = h("input", { id: "adjust-points", type: "number", required: true, step: 1 });
    const why = h("input", { id: "adjust-reason", required: true, maxlength: 200 });
    blocks.push(h("form", { id: "points-form", class: "row", onsubmit: async (e) => {
      e.preventDefault();
      status.replaceChildren();
      try {
        const r = await api(`/v1/customers/${encodeURIComponent(customerId)}/points`, {
          method: "POST", body: { points: Number(pts.value), reason: why.value.trim() },
          headers: { "Idempotency-Key": crypto.randomUUID() },
        });
        status.append(h("p", { class: "ok" }, t("adjusted", { n: num(r.availableAfter) })));
        document.getElementById("points-available")?.replaceChildren(num(r.availableAfter));
      } catch (err) { status.append(errorBox(err)); }
    } },
    h("h3", {}, t("adjustPoints")),
    h("label", { for: "adjust-points" }, t("pointsSigned"), pts),
    h("label", { for: "adjust-reason" }, t("adjustReason"), why),
    h("button", { type: "submit" }, t("apply")), status));
  }
  if (can("privacy:manage")) {
    const status = h("div", { "aria-live": "polite", id: "privacy-status" });
    const type = h("select", { id: "privacy-type" },
      ["access", "erasure", "rectification", "restriction"].map((k) => h("option", { value: k }, t(k))));
    const verified = h("input", { id: "privacy-verified", type: "checkbox" });
    blocks.push(h("form", { id: "privacy-form", class: "row", onsubmit: async (e) => {
      e.preventDefault();
      status.replaceChildren();
      try {
        const r = await api(`/v1/customers/${encodeURIComponent(customerId)}/privacy-requests`, {
          method: "POST", headers: { "X-Cxloop-Reason": reason },
          body: { type: type.value, verificationStatus: verified.checked ? "verified" : "pending", verificationMethod: verified.checked ? "console" : "" },
        });
        status.append(h("p", { class: "ok", id: "privacy-opened" }, t("requestOpened", { id: r.requestId, status: r.status })));
      } catch (err) { status.append(errorBox(err)); }
    } },
    h("h3", {}, t("privacyRequest")),
    h("label", { for: "privacy-type" }, t("requestType"), type),
    h("label", { for: "privacy-verified", class: "inline" }, h("span", {}, t("verified")), verified),
    h("button", { type: "submit" }, t("open")), status));
  }
  if (!blocks.length) return null;
  return h("section", { class: "card", id: "customer-actions", "aria-label": t("actions") }, h("h2", {}, t("actions")), blocks);
}

// -- overview -------------------------------------------------------------------------

function notAvailableCard(title, id, o, name) {
  const m = (o.missing || []).find((x) => x.part === name);
  return h("section", { class: "card unavailable", id, "aria-label": title }, h("h2", {}, title),
    h("p", { class: "muted" }, t("notAvailable")), m ? h("p", { class: "muted" }, m.reason) : "");
}

async function renderOverview(section) {
  section.append(h("h1", { id: "view-title" }, t("overviewTitle")));
  const body = h("div", { "aria-live": "polite" }, h("p", {}, t("loading")));
  section.append(body);
  let o;
  try { o = await api("/v1/console/overview"); } catch (err) { body.replaceChildren(errorBox(err)); return; }
  const grid = h("div", { class: "grid", id: "overview" });
  const cu = o.customers;
  grid.append(cu ? h("section", { class: "card", id: "ov-customers", "aria-label": t("customers") },
    h("h2", {}, t("customers")), h("p", { class: "stat", id: "ov-customers-count" }, num(cu.customers)),
    h("p", {}, `${t("mergeRate")}: ${pct(cu.mergeRate)} · ${t("merges")}: ${num(cu.merges)}`),
    barChart(Object.entries(cu.identifiersByType || {}).map(([k, v]) => ({ label: k, value: Number(v) })), t("identifiersByType")))
    : notAvailableCard(t("customers"), "ov-customers", o, "customers"));
  const lo = o.loyalty;
  grid.append(lo ? h("section", { class: "card", id: "ov-loyalty", "aria-label": t("liability") },
    h("h2", {}, t("liability")), h("p", { class: "stat" }, num(lo.liability)),
    h("p", {}, `${t("issued")}: ${num(lo.issued)} · ${t("redeemed")}: ${num(lo.redeemed)} · ${t("breakage")}: ${pct(lo.breakageRate)}`))
    : notAvailableCard(t("liability"), "ov-loyalty", o, "loyalty"));
  const ex = o.experience;
  if (ex) {
    const kpi = (name) => (ex[name] && ex[name].total && Number(ex[name].total.responses) > 0 ? ex[name].total : null);
    const nps = ex.nps ? (ex.nps.series || []).filter((p) => Number(p.responses) > 0) : [];
    grid.append(h("section", { class: "card", id: "ov-experience", "aria-label": t("experience", { days: ex.days }) },
      h("h2", {}, t("experience", { days: ex.days })),
      table(["", "", ""], ["nps", "csat", "ces"].map((k) => [t(k), kpi(k) ? Number(kpi(k).value).toFixed(1) : "—", kpi(k) ? t("responses", { n: num(kpi(k).responses) }) : ""])),
      nps.length ? lineChart(nps.map((p) => ({ label: day(p.periodStart), value: Math.round(Number(p.value)) })), t("npsTrend"), { min: -100, max: 100 }) : ""));
  } else grid.append(notAvailableCard(t("experience", { days: 90 }), "ov-experience", o, "experience"));
  grid.append(o.purposes ? h("section", { class: "card", id: "ov-purposes", "aria-label": t("purposes") },
    h("h2", {}, t("purposes")), h("ul", {}, o.purposes.purposes.map((p) => h("li", {}, p))))
    : notAvailableCard(t("purposes"), "ov-purposes", o, "purposes"));
  grid.append(o.alerts ? h("section", { class: "card", id: "ov-alerts", "aria-label": t("alerts") },
    h("h2", {}, t("alerts")), o.alerts.alerts.length ? h("ul", {}, o.alerts.alerts.map((a) => h("li", {}, `${a.kpi || ""}${a.breakdownValue ? ` (${a.breakdownValue})` : ""}: ${Number(a.observedValue).toFixed(3)} / ${t("expected")} ${Number(a.expectedValue).toFixed(3)} · ${day(a.windowStart)}`))) : h("p", { class: "muted" }, t("noAlerts")))
    : notAvailableCard(t("alerts"), "ov-alerts", o, "alerts"));
  grid.append(notAvailableCard(t("optIn"), "ov-optin", o, "consentOptIn"));
  grid.append(notAvailableCard(t("tierMix"), "ov-tiers", o, "tierMix"));
  grid.append(notAvailableCard(t("experiments"), "ov-experiments", o, "experiments"));
  grid.append(notAvailableCard(t("eventsPerSecond"), "ov-eps", o, "eventsPerSecond"));
  body.replaceChildren(grid);
}

// -- journeys -------------------------------------------------------------------------

function renderJourneys(section) {
  const out = h("div", { id: "funnel-result", "aria-live": "polite" });
  const steps = h("input", { id: "funnel-steps", value: "Product Viewed, Product Added, Order Completed", required: true });
  const days = h("input", { id: "funnel-days", type: "number", min: 1, max: 400, value: 365 });
  const breakdown = h("select", { id: "funnel-breakdown" },
    h("option", { value: "" }, t("noBreakdown")), h("option", { value: "channel" }, t("channel")));
  const form = h("form", { id: "funnel-form", class: "card row", onsubmit: async (e) => {
    e.preventDefault();
    out.replaceChildren(h("p", {}, t("loading")));
    const q = new URLSearchParams({ steps: steps.value, days: days.value, breakdown: breakdown.value });
    try {
      out.replaceChildren(funnel(await api(`/v1/console/funnel?${q}`)));
    } catch (err) {
      out.replaceChildren(err.status === 503
        ? h("section", { class: "card unavailable", id: "funnel-unavailable" }, h("h2", {}, t("funnelTitle")),
            h("p", { class: "muted" }, t("journeysUnavailable", { reason: err.message })))
        : errorBox(err));
    }
  } },
  h("label", { for: "funnel-steps", class: "grow" }, t("steps"), steps),
  h("label", { for: "funnel-days" }, t("days"), days),
  h("label", { for: "funnel-breakdown" }, t("breakdown"), breakdown),
  h("button", { type: "submit" }, t("show")));
  const p = pathsForm();
  const r = retentionForm();
  const alerts = h("div", { id: "alerts-box" });
  section.append(h("h1", { id: "view-title" }, t("journeysTitle")), form, out, p.form, p.out, r.form, r.out, alerts);
  form.requestSubmit();
  p.form.requestSubmit();
  r.form.requestSubmit();
  alertsCard().then((card) => alerts.replaceChildren(card));
}

function funnel(f) {
  const steps = f.steps || [];
  const card = h("section", { class: "card", id: "funnel" }, h("h2", {}, t("funnelTitle")));
  card.append(barChart(steps.map((s) => ({ label: s.event, value: Number(s.customers), note: `${num(s.customers)} (${pct(s.conversionFromStart)})` })), t("funnelTitle")));
  card.append(table([t("step"), t("reached"), t("fromPrevious"), t("fromStart")],
    steps.map((s) => [s.event, num(s.customers), pct(s.conversionFromPrevious), pct(s.conversionFromStart)]), { id: "funnel-table" }));
  for (const b of f.breakdowns || []) {
    card.append(h("h3", {}, `${t("breakdown")}: ${b.value}`),
      table([t("step"), t("reached"), t("fromStart")], b.steps.map((s) => [s.event, num(s.customers), pct(s.conversionFromStart)])));
  }
  if (f.note) card.append(h("p", { class: "muted" }, f.note));
  return card;
}

// -- experiments & segments ------------------------------------------------------------

function renderExperiments(section) {
  section.append(h("h1", { id: "view-title" }, t("experimentsTitle")));
  const out = h("div", { id: "experiment-result", "aria-live": "polite" });
  const id = h("input", { id: "experiment-id", required: true, autocomplete: "off" });
  section.append(h("p", { class: "muted" }, t("experimentList")),
    h("form", { id: "experiment-form", class: "card row", onsubmit: async (e) => {
      e.preventDefault();
      try { out.replaceChildren(experiment(await api(`/v1/console/experiments/${encodeURIComponent(id.value.trim())}`))); } catch (err) { out.replaceChildren(errorBox(err)); }
    } },
    h("label", { for: "experiment-id" }, t("experimentId"), id),
    h("button", { type: "submit" }, t("show"))), out);
  if (!can("segments:manage")) return;
  const res = h("div", { id: "segment-result", "aria-live": "polite" });
  const saved = h("div", { id: "segment-saved", "aria-live": "polite" });
  const rule = h("textarea", { id: "segment-rule", required: true }, "lifetime_orders >= 1");
  const sid = h("input", { id: "segment-id", maxlength: 64, autocomplete: "off", "aria-describedby": "segment-save-help" });
  const name = h("input", { id: "segment-name", maxlength: 200, autocomplete: "off" });
  // Saved only after a preview of this very rule: a marketer sees the size first.
  let previewed = null;
  const save = h("button", { type: "button", id: "segment-save", disabled: true, onclick: async () => {
    saved.replaceChildren();
    if (!sid.value.trim()) { saved.append(h("p", { class: "error", role: "alert" }, t("segmentIdRequired"))); return; }
    try {
      const r = await api("/v1/console/segments", { method: "POST", body: { segmentId: sid.value.trim(), name: name.value.trim(), rule: rule.value } });
      saved.append(h("p", { class: "ok", id: "segment-saved-text" }, t("segmentSaved", { id: r.segmentId })));
      savedSegments(list);
    } catch (err) { saved.append(errorBox(err)); }
  } }, t("save"));
  rule.addEventListener("input", () => { save.disabled = rule.value !== previewed; });
  section.append(h("form", { id: "segment-form", class: "card", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const r = await api("/v1/console/segments/preview", { method: "POST", body: { rule: rule.value } });
      res.replaceChildren(h("p", { id: "segment-size" }, t("previewResult", { size: num(r.size), evaluated: num(r.evaluated) })));
      previewed = rule.value;
      save.disabled = false;
    } catch (err) { res.replaceChildren(errorBox(err)); }
  } },
  h("h2", {}, t("segmentPreview")),
  h("label", { for: "segment-rule" }, t("rule"), rule),
  h("p", {}, h("button", { type: "submit" }, t("preview"))), res,
  h("div", { class: "row" },
    h("label", { for: "segment-id" }, t("segmentId"), sid),
    h("label", { for: "segment-name", class: "grow" }, t("name"), name), save),
  h("p", { class: "muted", id: "segment-save-help" }, t("segmentSaveHelp")), saved));
  const list = h("section", { class: "card", id: "segments-list", "aria-live": "polite" });
  section.append(list);
  savedSegments(list);
}

function experiment(x) {
  const e = x.experiment || {};
  // No exposures yet: an interval says nothing (the service answers ±1e300).
  const ci = (v, lo, hi, n) => (Number(n) > 0 && Math.abs(Number(lo)) < 1e6 && Math.abs(Number(hi)) < 1e6
    ? `${pct(v)} (${pct(lo)} – ${pct(hi)})` : "—");
  const card = h("section", { class: "card", id: "experiment" }, h("h2", {}, `${e.name || e.experimentId} · ${enumName(e.status, "EXPERIMENT_STATUS_")}`));
  if (x.sampleRatioMismatch) card.append(h("p", { class: "error", role: "alert" }, t("srm")));
  card.append(h("p", {}, x.winningVariantId ? t("winner", { v: x.winningVariantId }) : t("noWinner")));
  const vs = x.variants || [];
  card.append(barChart(vs.map((v) => ({ label: v.variantId, value: Number(v.conversionRate) * 1000, note: pct(v.conversionRate) })), t("rate")));
  card.append(table([t("variant"), t("exposures"), t("conversions"), t("rate"), t("uplift"), t("beatControl")],
    vs.map((v) => [v.control ? `${v.variantId} (${t("control")})` : v.variantId, num(v.exposures), num(v.conversions),
      ci(v.conversionRate, v.conversionRateCiLow, v.conversionRateCiHigh, v.exposures),
      v.control ? "—" : ci(v.uplift, v.upliftCiLow, v.upliftCiHigh, v.exposures),
      v.control || !(Number(v.exposures) > 0) ? "—" : pct(v.probabilityToBeatControl)])));
  return card;
}

// -- merge review (identity's review queue) ---------------------------------------------

function renderReview(section) {
  section.append(h("h1", { id: "view-title" }, t("reviewTitle")), h("p", { class: "muted" }, t("reviewHelp")));
  const out = h("div", { id: "review-result", "aria-live": "polite" });
  const reason = h("input", { id: "review-reason", required: true, maxlength: 200 });
  const status = h("select", { id: "review-status" }, ["open", "approved", "rejected"].map((k) => h("option", { value: k }, t(`review_${k}`))));
  const load = async () => {
    out.replaceChildren(h("p", {}, t("loading")));
    try {
      const r = await api(`/v1/console/identity/reviews?${new URLSearchParams({ status: status.value })}`, { headers: { "X-Cxloop-Reason": reason.value.trim() } });
      out.replaceChildren(reviewItems(r.items || [], reason.value.trim(), load));
    } catch (err) { out.replaceChildren(errorBox(err)); }
  };
  section.append(h("form", { id: "review-form", class: "card row", onsubmit: (e) => { e.preventDefault(); load(); } },
    h("label", { for: "review-reason", class: "grow" }, t("reason"), reason),
    h("label", { for: "review-status" }, t("status"), status),
    h("button", { type: "submit" }, t("show"))), out);
}

function reviewItems(items, reason, reload) {
  if (!items.length) return h("p", { class: "muted", id: "review-empty" }, t("noReviewItems"));
  return h("div", { id: "review-items" }, items.map((x, n) => {
    const status = h("div", { "aria-live": "polite", id: `review-status-${n}` });
    const why = h("input", { id: `review-why-${n}`, required: true, maxlength: 200 });
    const decide = (decision) => async (e) => {
      e.preventDefault();
      status.replaceChildren();
      if (!why.value.trim()) { status.append(h("p", { class: "error", role: "alert" }, t("decisionReasonRequired"))); return; }
      try {
        const r = await api(`/v1/console/identity/reviews/${encodeURIComponent(x.itemId)}`, { method: "POST", body: { decision, reason: why.value.trim() } });
        status.append(h("p", { class: "ok", id: `review-decided-${n}` }, t("reviewDecided", { status: enumName(r.status, "REVIEW_STATUS_"), a: r.customerIdA, b: r.customerIdB })));
      } catch (err) { status.append(errorBox(err)); }
    };
    const explained = h("div", { "aria-live": "polite", id: `review-explain-${n}` });
    const explain = async () => {
      explained.replaceChildren(h("p", {}, t("loading")));
      try {
        const r = await api("/v1/console/identity/explain", { method: "POST", headers: { "X-Cxloop-Reason": reason }, body: {
          a: { type: "external", value: x.recordIdA, namespace: x.sourceA }, b: { type: "external", value: x.recordIdB, namespace: x.sourceB } } });
        explained.replaceChildren(explanation(r));
      } catch (err) { explained.replaceChildren(errorBox(err)); }
    };
    const open = x.status === "REVIEW_STATUS_OPEN";
    return h("section", { class: "card review-item", "aria-label": t("reviewItem", { n: n + 1 }), "data-item-id": x.itemId },
      h("h2", {}, t("reviewItem", { n: n + 1 }), " ", h("span", { class: "badge" }, pct(x.matchProbability))),
      table([t("record"), t("customerId")], [[`${x.sourceA}:${x.recordIdA}`, x.customerIdA], [`${x.sourceB}:${x.recordIdB}`, x.customerIdB]]),
      table([t("field"), t("level"), t("weight")], (x.matchWeights || []).map((w) => [w.field, w.level, Number(w.weight).toFixed(2)])),
      h("p", {}, h("button", { type: "button", class: "secondary", id: `review-explain-button-${n}`, onclick: explain }, t("whyLinked"))), explained,
      open ? h("form", { class: "row", id: `review-decide-${n}`, onsubmit: (e) => e.preventDefault() },
        h("label", { for: `review-why-${n}`, class: "grow" }, t("decisionReason"), why),
        h("button", { type: "button", id: `review-approve-${n}`, onclick: decide("approve") }, t("approve")),
        h("button", { type: "button", class: "secondary", id: `review-reject-${n}`, onclick: decide("reject") }, t("reject")))
        : h("p", { class: "muted" }, t("reviewDecidedBy", { status: enumName(x.status, "REVIEW_STATUS_"), by: x.decidedBy || "—" })),
      status);
  }));
}

// -- journeys: paths, retention, KPI alerts ------------------------------------------------

function pathsForm() {
  const out = h("div", { id: "paths-result", "aria-live": "polite" });
  const anchor = h("input", { id: "paths-anchor", required: true, value: "Product Viewed" });
  const direction = h("select", { id: "paths-direction" }, ["after", "before"].map((k) => h("option", { value: k }, t(`paths_${k}`))));
  const depth = h("input", { id: "paths-depth", type: "number", min: 1, max: 10, value: 3 });
  const form = h("form", { id: "paths-form", class: "card row", onsubmit: async (e) => {
    e.preventDefault();
    out.replaceChildren(h("p", {}, t("loading")));
    const q = new URLSearchParams({ anchor: anchor.value.trim(), direction: direction.value, depth: depth.value, days: 365 });
    try { out.replaceChildren(pathsCard(await api(`/v1/console/paths?${q}`))); } catch (err) { out.replaceChildren(errorBox(err)); }
  } },
  h("h2", { class: "full" }, t("pathsTitle")),
  h("label", { for: "paths-anchor", class: "grow" }, t("anchor"), anchor),
  h("label", { for: "paths-direction" }, t("direction"), direction),
  h("label", { for: "paths-depth" }, t("depth"), depth),
  h("button", { type: "submit" }, t("show")));
  return { form, out };
}

function pathsCard(p) {
  const paths = p.paths || [];
  const card = h("section", { class: "card", id: "paths", "aria-label": t("pathsTitle") }, h("h2", {}, t("pathsTitle")),
    h("p", { class: "muted" }, t("anchors", { n: num(p.anchors) })));
  if (!paths.length) { card.append(listOr([])); return card; }
  const label = (x) => x.events.join(" → ");
  const links = p.links || [];
  if (links.length) card.append(flowChart(links.map((l) => ({ step: Number(l.step), source: l.source, target: l.target, value: Number(l.count) })), t("pathsChart")));
  card.append(table([t("path"), t("customers")], paths.map((x) => [label(x), num(x.count)]), { id: "paths-table" }));
  if (links.length) {
    card.append(h("h3", {}, t("pathLinks")),
      table([t("step"), t("from"), t("to"), t("count")], links.map((l) => [num(Number(l.step) + 1), l.source, l.target, num(l.count)]), { id: "paths-links" }));
  }
  return card;
}

function retentionForm() {
  const out = h("div", { id: "retention-result", "aria-live": "polite" });
  const cohort = h("input", { id: "retention-cohort", placeholder: t("anyEvent") });
  const back = h("input", { id: "retention-return", placeholder: t("anyEvent") });
  const form = h("form", { id: "retention-form", class: "card row", onsubmit: async (e) => {
    e.preventDefault();
    out.replaceChildren(h("p", {}, t("loading")));
    const q = new URLSearchParams({ cohortEvent: cohort.value.trim(), returnEvent: back.value.trim(), weeks: 12 });
    try { out.replaceChildren(retentionCard(await api(`/v1/console/retention?${q}`))); } catch (err) { out.replaceChildren(errorBox(err)); }
  } },
  h("h2", { class: "full" }, t("retentionTitle")),
  h("label", { for: "retention-cohort", class: "grow" }, t("cohortEvent"), cohort),
  h("label", { for: "retention-return", class: "grow" }, t("returnEvent"), back),
  h("button", { type: "submit" }, t("show")));
  return { form, out };
}

// The triangle: one row per weekly cohort, one cell per week since joining,
// shaded by the share retained (classes, not inline styles: the CSP).
function retentionCard(r) {
  const cohorts = r.cohorts || [];
  const weeks = Math.max(0, ...cohorts.map((c) => (c.rate || []).length));
  const card = h("section", { class: "card", id: "retention", "aria-label": t("retentionTitle") }, h("h2", {}, t("retentionTitle")),
    h("p", { class: "muted" }, t("stickiness", { s: pct(r.stickiness), mau: num(r.mau) })));
  if (!cohorts.length) { card.append(listOr([])); return card; }
  const head = [t("cohort"), t("customers"), ...Array.from({ length: weeks }, (_, i) => t("weekN", { n: i }))];
  const rows = cohorts.map((c) => {
    const cells = Array.from({ length: weeks }, (_, i) => {
      const v = (c.rate || [])[i];
      return v === undefined ? h("td", { class: "heat-none" }, "") : h("td", { class: `heat-${Math.min(4, Math.floor(Number(v) * 5))}` }, pct(v));
    });
    return h("tr", {}, h("th", { scope: "row" }, day(c.cohortStart)), h("td", {}, num(c.customers)), cells);
  });
  card.append(h("div", { class: "table-wrap" }, h("table", { id: "retention-table", class: "triangle" },
    h("caption", { class: "muted" }, t("retentionCaption")),
    h("thead", {}, h("tr", {}, head.map((x) => h("th", { scope: "col" }, x)))), h("tbody", {}, rows))));
  return card;
}

async function alertsCard() {
  const card = h("section", { class: "card", id: "alerts", "aria-label": t("alerts") }, h("h2", {}, t("alerts")));
  try {
    const r = await api("/v1/console/alerts?limit=20");
    const alerts = r.alerts || [];
    card.append(alerts.length
      ? table([t("kpi"), t("breakdown"), t("window"), t("observed"), t("expected"), t("direction")], alerts.map((a) => [
        a.kpi, a.breakdown ? `${a.breakdown} = ${a.breakdownValue}` : "—", `${day(a.windowStart)} – ${day(a.windowEnd)}`,
        Number(a.observedValue).toFixed(3), `${Number(a.expectedValue).toFixed(3)} (${Number(a.lowerLimit).toFixed(3)} – ${Number(a.upperLimit).toFixed(3)})`,
        enumName(a.direction, "ALERT_DIRECTION_")]), { id: "alerts-table" })
      : h("p", { class: "muted", id: "alerts-none" }, t("noAlerts")));
  } catch (err) { card.append(errorBox(err)); }
  return card;
}

// -- segments: save and list --------------------------------------------------------------

async function savedSegments(box) {
  try {
    const r = await api("/v1/console/segments");
    const segs = r.segments || [];
    box.replaceChildren(h("h2", {}, t("savedSegments")), segs.length
      ? table([t("segmentId"), t("name"), t("rule"), t("size")], segs.map((x) => [x.segmentId, x.name, h("code", {}, x.rule), num(x.size)]), { id: "segments-table" })
      : h("p", { class: "muted" }, t("none")));
  } catch (err) { box.replaceChildren(h("h2", {}, t("savedSegments")), errorBox(err)); }
}

// -- start ------------------------------------------------------------------------------

document.getElementById("lang").addEventListener("click", () => {
  state.lang = state.lang === "en" ? "ko" : "en";
  localStorage.setItem("cxloop.lang", state.lang);
  render();
});
document.getElementById("logout").addEventListener("click", async () => {
  try { await api("/v1/console/session", { method: "DELETE" }); } catch { /* ended anyway */ }
  state.session = null;
  render();
});
window.addEventListener("hashchange", () => { if (state.session) render(); });

(async () => {
  try {
    const r = await fetch("/v1/console/session", { credentials: "same-origin" });
    state.session = r.ok ? await r.json() : null;
  } catch { state.session = null; }
  render();
})();
