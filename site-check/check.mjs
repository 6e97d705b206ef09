// Checks a published tthc-sync site the way its readers meet it: serves the directory on
// 127.0.0.1, opens every page type in headless Chromium (Debian's, driven by playwright-core)
// on a phone and on a desktop, runs axe-core (no serious or critical violation allowed),
// watches for anything the pages' Content-Security-Policy refuses, tries the search without
// diacritics, and checks the search folding against the shared vectors.
//
//   node check.mjs SITE_DIR [--screenshots DIR]
//
// The Nu Html Checker and the feed and sitemap schemas run from scripts/check-site.sh.
import { createServer } from "node:http";
import { readFile, readdir, stat, mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const siteDir = path.resolve(args[0] ?? "");
const shotsAt = args.indexOf("--screenshots");
const screenshots = shotsAt >= 0 ? path.resolve(args[shotsAt + 1]) : null;
const failures = [];
const fail = (message) => { failures.push(message); console.error(`FAIL ${message}`); };

// 1. The folding vectors: the site's script folds exactly as the Rust `text::search_key`.
const search = require(path.join(siteDir, "assets", "search.js"));
const vectors = JSON.parse(
  await readFile(new URL("../tests/fixtures/search-folding.json", import.meta.url), "utf8"),
);
for (const [input, expected] of vectors.fold) {
  const got = search.fold(input);
  if (got !== expected) fail(`fold(${JSON.stringify(input)}) = ${JSON.stringify(got)}, want ${JSON.stringify(expected)}`);
}
console.log(`folding: ${vectors.fold.length} vectors checked`);

// 2. Serve the site.
const types = { ".html": "text/html; charset=utf-8", ".css": "text/css", ".js": "text/javascript",
  ".json": "application/json", ".xml": "application/xml", ".txt": "text/plain" };
const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url, "http://x");
    let file = path.join(siteDir, decodeURIComponent(url.pathname));
    if (!file.startsWith(siteDir)) { res.writeHead(403).end(); return; }
    if ((await stat(file)).isDirectory()) file = path.join(file, "index.html");
    const body = await readFile(file);
    res.writeHead(200, { "content-type": types[path.extname(file)] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404).end("not found");
  }
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const base = `http://127.0.0.1:${server.address().port}/`;

const procedures = (await readdir(path.join(siteDir, "thu-tuc"))).filter((f) => f.endsWith(".html")).sort();
if (procedures.length === 0) fail("the site has no procedure page");
const pages = [
  "index.html",
  `thu-tuc/${procedures[0]}`,
  `thu-tuc/${procedures[Math.floor(procedures.length / 2)]}`,
  "thay-doi/index.html",
  "thong-ke/index.html",
  "niem-yet/index.html",
  "nhung/thong-ke.html",
  "nhung/thay-doi.html",
];
const viewports = {
  phone: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
  desktop: { viewport: { width: 1366, height: 900 } },
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const axeSource = await readFile(require.resolve("axe-core/axe.min.js"), "utf8");

try {
  for (const [name, options] of Object.entries(viewports)) {
    // The pages as served: nothing the Content-Security-Policy refuses, no script error.
    const strict = await browser.newContext(options);
    for (const page of pages) {
      const tab = await strict.newPage();
      const refused = [];
      tab.on("console", (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) refused.push(m.text()); });
      tab.on("pageerror", (e) => refused.push(`script error: ${e.message}`));
      const response = await tab.goto(base + page, { waitUntil: "load" });
      if (!response || response.status() !== 200) fail(`${page}: HTTP ${response?.status()}`);
      for (const r of refused) fail(`${page} (${name}): ${r}`);
      const overflow = await tab.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (name === "phone" && overflow > 1) fail(`${page} (phone): the page is ${overflow}px wider than the screen`);
      await tab.close();
    }
    await strict.close();

    // Accessibility: axe-core, injected past the CSP only for the check itself.
    const audit = await browser.newContext({ ...options, bypassCSP: true });
    for (const page of pages) {
      const tab = await audit.newPage();
      await tab.goto(base + page, { waitUntil: "load" });
      await tab.addScriptTag({ content: axeSource });
      const result = await tab.evaluate(async () =>
        // eslint-disable-next-line no-undef
        await axe.run(document, { resultTypes: ["violations"] }));
      const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
      for (const v of bad) {
        fail(`${page} (${name}): axe ${v.impact} ${v.id}: ${v.help} – ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
      }
      console.log(`axe ${name} ${page}: ${result.violations.length} violations, ${bad.length} serious or critical`);
      await tab.close();
    }
    await audit.close();
  }

  // Search without diacritics, as people type it.
  const context = await browser.newContext(viewports.phone);
  const tab = await context.newPage();
  await tab.goto(base + "index.html");
  await tab.fill("#tim", process.env.SEARCH_QUERY ?? "dang ky khai sinh");
  const visible = await tab.$$eval("ul.procedures li:not([hidden]) a", (as) => as.map((a) => a.textContent));
  const all = await tab.$$eval("ul.procedures li", (li) => li.length);
  const wanted = process.env.SEARCH_FINDS ?? "Đăng ký khai sinh";
  if (!visible.includes(wanted)) fail(`search "dang ky khai sinh" does not show "${wanted}" (shows ${visible.slice(0, 5).join(" | ")})`);
  if (visible.length >= all) fail(`search hides nothing (${visible.length} of ${all} shown)`);
  console.log(`search: ${visible.length} of ${all} procedures shown`);
  await tab.fill("#tim", "");

  if (screenshots) {
    await mkdir(screenshots, { recursive: true });
    const shot = async (page, file, fullPage) => {
      await tab.goto(base + page);
      await tab.screenshot({ path: path.join(screenshots, file), fullPage });
    };
    await shot("index.html", "phone-list.png", false);
    await shot(`thu-tuc/${process.env.SCREENSHOT_PROCEDURE ?? procedures[0]}`, "phone-procedure.png", false);
    // The statistics page whole: the headline, the charts and the tables below them.
    await shot("thong-ke/index.html", "phone-statistics.png", true);
    console.log(`screenshots written to ${screenshots}`);
  }
  await context.close();
} finally {
  await browser.close();
  server.close();
}

if (failures.length > 0) {
  console.error(`${failures.length} problems`);
  process.exit(1);
}
console.log("site check passed");
