// Drives the cxloop console in Debian's Chromium as one role (issue 17) and
// prints one JSON line of what it saw; tests/console/test_console_browser.py
// asserts on it. Usage: node console_browser.cjs '<json config>'
//   config: {url, key, role, name, email, userId, customerId, shots, axe, experimentId,
//            reviewDecision ("approve" | "reject"), resolveCase, segmentId}
const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const cfg = JSON.parse(process.argv[2]);
// quick: the customer view and the refusals only (no axe, no Korean or phone
// pass) — for a run that checks one thing again (a service down).
const quick = Boolean(cfg.quick);
const out = { role: cfg.role, views: {}, texts: {}, checks: {}, axe: [], errors: [] };

async function shot(page, name) {
  if (!cfg.shots) return;
  fs.mkdirSync(cfg.shots, { recursive: true });
  await page.screenshot({ path: path.join(cfg.shots, `${cfg.role}-${name}.png`), fullPage: true });
}

// A request made from the page itself (same origin, with the cookie).
function pageFetch(page, url, init) {
  return page.evaluate(async ([u, i]) => {
    const r = await fetch(u, { credentials: "same-origin", ...i });
    let body = null;
    try { body = await r.json(); } catch { body = null; }
    return { status: r.status, body };
  }, [url, init]);
}

async function csrf(page) {
  const r = await pageFetch(page, "/v1/console/session", {});
  return r.body && r.body.csrfToken;
}

async function axe(page, view) {
  if (!cfg.axe || quick) return;
  // Evaluated over the DevTools protocol: the page's CSP (script-src 'self') stays on.
  await page.evaluate(fs.readFileSync(cfg.axe, "utf8"));
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  for (const v of res) out.axe.push({ view, ...v });
}

async function koreanAtPhoneWidth(page) {
  await page.click("#lang");
  await page.waitForFunction(() => document.documentElement.lang === "ko");
  out.texts.navKo = await page.innerText("#nav");
  await page.setViewportSize({ width: 390, height: 844 });
  // At phone width nothing is wider than the screen (the widest view wins):
  // every view once (the admin's run has them all), else the first.
  out.checks.phoneOverflow = -1;
  const views = cfg.role === "admin" ? [...out.nav.slice(1), out.nav[0]] : [out.nav[0]];
  for (const view of views) {
    await page.click(`#nav-${view}`);
    await page.waitForSelector(`#view-${view}`);
    await page.waitForTimeout(400);
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    out.checks.phoneOverflow = Math.max(out.checks.phoneOverflow, over);
  }
  await shot(page, "phone-ko");
  await page.click("#lang");
  await page.setViewportSize({ width: 1280, height: 900 });
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
  const page = await context.newPage();
  page.on("pageerror", (e) => out.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") out.errors.push(m.text()); });
  page.setDefaultTimeout(30000);

  await page.goto(`${cfg.url}/console/`);
  await page.waitForSelector("#login-form");
  await axe(page, "login");
  await shot(page, "login");
  // Keyboard only: the skip link first, then the key field, Enter submits.
  await page.keyboard.press("Tab");
  out.checks.firstTab = await page.evaluate(() => document.activeElement.id);
  await page.focus("#api-key");
  await page.keyboard.type(cfg.key);
  await page.keyboard.press("Enter");
  await page.waitForFunction((n) => document.getElementById("whoami").textContent.includes(n), cfg.name);
  out.texts.whoami = await page.textContent("#whoami");
  const cookies = await context.cookies();
  const c = cookies.find((x) => x.name === "cxloop_console");
  out.checks.cookie = c ? { httpOnly: c.httpOnly, secure: c.secure, sameSite: c.sameSite } : null;
  out.checks.cookieVisibleToScript = await page.evaluate(() => document.cookie.includes("cxloop_console"));
  out.nav = await page.$$eval("#nav a", (as) => as.map((a) => a.id.replace("nav-", "")));

  for (const view of out.nav) {
    await page.focus(`#nav-${view}`);
    await page.keyboard.press("Enter");
    await page.waitForSelector(`#view-${view}`);
    if (view === "overview") await page.waitForSelector("#overview, #view-overview .error");
    if (view === "journeys") {
      await page.waitForSelector("#funnel, #funnel-unavailable, #funnel-result .error");
      out.texts.funnel = await page.$$eval("#funnel-table tbody tr", (rows) =>
        rows.map((r) => Array.from(r.cells).map((c) => c.textContent)));
    }
    if (view === "journeys") {
      await page.waitForSelector("#paths, #paths-result .error");
      out.texts.paths = await page.$$eval("#paths-table tbody tr", (rows) =>
        rows.map((r) => Array.from(r.cells).map((c) => c.textContent)));
      out.checks.flowChart = Boolean(await page.$("#paths svg[role=img] path"));
      await page.waitForSelector("#retention, #retention-result .error");
      out.texts.retention = await page.$$eval("#retention-table tbody tr", (rows) =>
        rows.map((r) => Array.from(r.cells).map((c) => c.textContent)));
      await page.waitForSelector("#alerts-table, #alerts-none, #alerts .error");
      out.checks.alerts = Boolean(await page.$("#alerts-table, #alerts-none"));
    }
    if (view === "review") {
      await page.fill("#review-reason", `browser test ${cfg.role}: merge queue`);
      await page.click("#review-form button[type=submit]");
      await page.waitForSelector("#review-items, #review-empty, #review-result .error");
      out.texts.reviewItems = (await page.$$(".review-item")).length;
      if (cfg.reviewDecision && (await page.$("#review-decide-0"))) {
        await page.click("#review-explain-button-0");
        await page.waitForSelector("#review-explain-0 #explain-answer, #review-explain-0 .error");
        out.texts.reviewExplained = await page.textContent("#review-explain-0");
        await page.fill("#review-why-0", `checked by ${cfg.role} in the browser test`);
        await page.click(`#review-${cfg.reviewDecision}-0`);
        await page.waitForSelector("#review-decided-0, #review-status-0 .error");
        out.texts.reviewDecided = await page.textContent("#review-status-0");
      }
    }
    if (view === "overview") {
      out.texts.customersCount = await page.$eval("#ov-customers-count", (e) => e.textContent).catch(() => null);
    }
    if (view === "customer") {
      await page.selectOption("#find-kind", "email");
      await page.fill("#find-value", cfg.email);
      await page.fill("#find-reason", `browser test ${cfg.role}`);
      await page.click("#customer-form button[type=submit]");
      await page.waitForSelector("#c360, #customer-result .error");
      out.texts.customerId = (await page.$("#c360")) ? await page.getAttribute("#c360", "data-customer-id") : null;
      out.texts.missing = await page.$$eval("#missing li", (ls) => ls.map((l) => l.dataset.part));
      out.texts.journey = await page.$$eval("#journey-table tbody tr", (rows) =>
        rows.map((r) => Array.from(r.cells).map((c) => c.textContent)));
      if (await page.$("#explain-form")) {
        await page.selectOption("#explain-b-type", "userId");
        await page.fill("#explain-b-value", cfg.userId);
        await page.click("#explain-form button[type=submit]");
        await page.waitForSelector("#explain-answer, #explain-result .error");
        out.texts.explainSame = (await page.$("#explain-same")) ? await page.textContent("#explain-same") : await page.textContent("#explain-result");
        out.texts.explainSteps = await page.$$eval("#explain-table tbody tr", (rows) =>
          rows.map((r) => Array.from(r.cells).map((c) => c.textContent)));
      }
      out.checks.caseForm = Boolean(await page.$("#case-form-0"));
      if (cfg.resolveCase && out.checks.caseForm) {
        await page.fill("#case-resolution-0", "Replacement sent and a refund for the shipping.");
        await page.click("#case-form-0 button[type=submit]");
        await page.waitForSelector("#case-resolved-0, #case-status-0 .error");
        out.texts.caseResolved = (await page.$("#case-resolved-0")) ? await page.textContent("#case-resolved-0") : null;
        out.texts.caseStatus = await page.textContent("#case-status-0");
        out.texts.caseState = await page.textContent("#case-state-0");
      }
      out.checks.pointsForm = Boolean(await page.$("#points-form"));
      out.checks.privacyForm = Boolean(await page.$("#privacy-form"));
      if (out.checks.pointsForm) {
        out.texts.pointsBefore = (await page.$("#points-available")) ? await page.textContent("#points-available") : null;
        await page.fill("#adjust-points", "500");
        await page.fill("#adjust-reason", "goodwill after late delivery");
        await page.click("#points-form button[type=submit]");
        await page.waitForSelector("#points-status p");
        out.texts.pointsStatus = await page.textContent("#points-status");
        out.texts.pointsAvailable = (await page.$("#points-available")) ? await page.textContent("#points-available") : null;
      }
      if (out.checks.privacyForm) {
        await page.selectOption("#privacy-type", "access");
        await page.check("#privacy-verified");
        await page.click("#privacy-form button[type=submit]");
        await page.waitForSelector("#privacy-status p");
        out.texts.privacyStatus = await page.textContent("#privacy-status");
      }
    }
    if (view === "experiments" && cfg.experimentId) {
      await page.fill("#experiment-id", cfg.experimentId);
      await page.click("#experiment-form button[type=submit]");
      await page.waitForSelector("#experiment, #experiment-result .error");
      out.texts.experiment = await page.textContent("#experiment-result");
    }
    if (view === "experiments" && (await page.$("#segment-form"))) {
      out.checks.saveDisabledBeforePreview = await page.$eval("#segment-save", (b) => b.disabled);
      await page.click("#segment-form button[type=submit]");
      await page.waitForSelector("#segment-result p");
      out.texts.segment = await page.textContent("#segment-result");
      if (cfg.segmentId) {
        await page.waitForFunction(() => !document.getElementById("segment-save").disabled);
        await page.fill("#segment-id", cfg.segmentId);
        await page.fill("#segment-name", `Browser test (${cfg.role})`);
        await page.click("#segment-save");
        await page.waitForSelector("#segment-saved p");
        out.texts.segmentSaved = await page.textContent("#segment-saved");
        await page.waitForFunction((id) => Array.from(document.querySelectorAll("#segments-table tbody tr"))
          .some((r) => r.cells[0].textContent === id), cfg.segmentId);
      }
      await page.waitForSelector("#segments-table, #segments-list p");
      out.texts.segments = await page.$$eval("#segments-table tbody tr", (rows) =>
        rows.map((r) => Array.from(r.cells).map((c) => c.textContent)));
    }
    out.views[view] = await page.innerText("main");
    await axe(page, view);
    await shot(page, view);
  }

  // Korean, at phone width.
  if (!quick) await koreanAtPhoneWidth(page);

  // Refusals, from the page itself (same origin, with the session cookie).
  out.checks.noCsrf = await pageFetch(page, "/v1/console/segments/preview", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ rule: "lifetime_orders >= 1" }),
  });
  const token = await csrf(page);
  const post = (u, body, extra = {}) => pageFetch(page, u, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": token, "X-Cxloop-Reason": "browser test", ...extra },
    body: JSON.stringify(body),
  });
  const cid = cfg.customerId;
  out.checks.read360 = await pageFetch(page, `/v1/customers/${cid}`, { headers: { "X-Cxloop-Reason": "browser test" } });
  out.checks.read360 = { status: out.checks.read360.status };
  out.checks.privacy = { status: (await post(`/v1/customers/${cid}/privacy-requests`, { type: "access", verificationStatus: "verified" })).status };
  out.checks.points = { status: (await post(`/v1/customers/${cid}/points`, { points: 1, reason: "browser test" })).status };
  out.checks.preview = { status: (await post("/v1/console/segments/preview", { rule: "lifetime_orders >= 1" })).status };
  out.checks.overview = { status: (await pageFetch(page, "/v1/console/overview", {})).status };
  const why = { "X-Cxloop-Reason": "browser test" };
  out.checks.reviews = { status: (await pageFetch(page, "/v1/console/identity/reviews", { headers: why })).status };
  out.checks.segmentsList = { status: (await pageFetch(page, "/v1/console/segments", {})).status };
  out.checks.paths = { status: (await pageFetch(page, "/v1/console/paths?anchor=Product%20Viewed", {})).status };
  out.checks.explainApi = { status: (await post("/v1/console/identity/explain", {
    a: { type: "email", value: cfg.email }, b: { type: "userId", value: cfg.userId || "u" } })).status };
  out.checks.case = { status: (await post(`/v1/customers/${cid}/cases/no-such-case`, { note: "browser test" })).status };

  // Log out: the cookie no longer opens anything.
  await page.click("#logout");
  await page.waitForSelector("#login-form");
  out.checks.afterLogout = (await pageFetch(page, "/v1/console/overview", {})).status;
  await browser.close();
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e && e.stack || String(e)); process.exit(1); });
