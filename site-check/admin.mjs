// Checks the admin page of a running `tthc-sync serve` the way commune staff meet it: logs in
// through the form in headless Chromium (no JavaScript is needed, and the pages carry none),
// saves each page's HTML as served for the Nu Html Checker, runs axe-core on a phone and on a
// desktop (no serious or critical violation allowed), watches for anything the pages'
// Content-Security-Policy refuses, and presses "Đồng bộ ngay" to see the result shown.
//
//   node admin.mjs BASE_URL NAME PASSWORD OUT_DIR [SCREENSHOT_DIR]
import { mkdir, writeFile, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const [base, name, password, outDir, shotsDir] = process.argv.slice(2);
const failures = [];
const fail = (message) => { failures.push(message); console.error(`FAIL ${message}`); };
await mkdir(outDir, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const axeSource = await readFile(require.resolve("axe-core/axe.min.js"), "utf8");
const viewports = {
  phone: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
  desktop: { viewport: { width: 1366, height: 900 } },
};

/** Logs in through the form; the page lands on the overview. */
async function logIn(context) {
  const tab = await context.newPage();
  await tab.goto(`${base}/admin/login`);
  await tab.fill("#name", name);
  await tab.fill("#password", password);
  await Promise.all([tab.waitForURL(`${base}/admin/`), tab.click("button[type=submit]")]);
  return tab;
}

try {
  // The HTML as served, for the Nu Html Checker: the log-in page, the overview, a run's page.
  const saver = await browser.newContext();
  const login = await saver.request.get(`${base}/admin/login`);
  await writeFile(path.join(outDir, "login.html"), await login.text());
  const tab = await logIn(saver);
  const overview = await saver.request.get(`${base}/admin/`);
  const overviewHtml = await overview.text();
  await writeFile(path.join(outDir, "overview.html"), overviewHtml);
  const run = overviewHtml.match(/href="(\/admin\/runs\/\d+)"/);
  if (!run) fail("the overview links no run");
  const pages = ["/admin/login", "/admin/", ...(run ? [run[1]] : [])];
  if (run) await writeFile(path.join(outDir, "run.html"), await (await saver.request.get(base + run[1])).text());

  // Pressing "Đồng bộ ngay" (a plain form post) shows what happened.
  const button = tab.locator("form[action='/admin/sync'] button").first();
  await Promise.all([tab.waitForURL(`${base}/admin/`), button.click()]);
  const flash = await tab.locator("p.message").first().textContent().catch(() => null);
  if (!flash || !/Đã bắt đầu đồng bộ|đang được đồng bộ/.test(flash)) fail(`no result shown after "Đồng bộ ngay": ${flash}`);
  else console.log(`after "Đồng bộ ngay": ${flash.trim()}`);
  await writeFile(path.join(outDir, "overview-after-resync.html"), await (await saver.request.get(`${base}/admin/`)).text());
  await saver.close();

  if (shotsDir) {
    await mkdir(shotsDir, { recursive: true });
    const phone = await browser.newContext(viewports.phone);
    const shot = await logIn(phone);
    await shot.screenshot({ path: path.join(shotsDir, "phone-admin.png"), fullPage: false });
    const desktop = await browser.newContext(viewports.desktop);
    const wide = await logIn(desktop);
    await wide.screenshot({ path: path.join(shotsDir, "desktop-admin.png"), fullPage: true });
    await phone.close();
    await desktop.close();
    console.log(`admin screenshots written to ${shotsDir}`);
  }

  for (const [viewport, options] of Object.entries(viewports)) {
    // As served: nothing refused by the CSP, no sideways scrolling on a phone.
    const strict = await browser.newContext(options);
    const logged = await logIn(strict);
    for (const page of pages) {
      const refused = [];
      const listener = (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) refused.push(m.text()); };
      logged.on("console", listener);
      const response = await logged.goto(base + page, { waitUntil: "load" });
      if (!response || response.status() !== 200) fail(`${page}: HTTP ${response?.status()}`);
      for (const r of refused) fail(`${page} (${viewport}): ${r}`);
      logged.off("console", listener);
      const overflow = await logged.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (viewport === "phone" && overflow > 1) fail(`${page} (phone): the page is ${overflow}px wider than the screen`);
    }
    await strict.close();

    // Accessibility: axe-core, injected past the CSP only for the check itself.
    const audit = await browser.newContext({ ...options, bypassCSP: true });
    const auditing = await logIn(audit);
    for (const page of pages) {
      await auditing.goto(base + page, { waitUntil: "load" });
      await auditing.addScriptTag({ content: axeSource });
      // eslint-disable-next-line no-undef
      const result = await auditing.evaluate(async () => await axe.run(document, { resultTypes: ["violations"] }));
      const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
      for (const v of bad) {
        fail(`${page} (${viewport}): axe ${v.impact} ${v.id}: ${v.help} – ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
      }
      console.log(`axe ${viewport} ${page}: ${result.violations.length} violations, ${bad.length} serious or critical`);
    }
    await audit.close();
  }
} finally {
  await browser.close();
}

if (failures.length > 0) {
  console.error(`${failures.length} problems`);
  process.exit(1);
}
console.log("admin check passed");
