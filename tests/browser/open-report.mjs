// Opens an HTML report in the system's headless Chromium over the DevTools protocol and prints
// what a test needs to judge it, as JSON on stdout: console errors and page errors, every request
// the page made (all blocked except the report file itself: the network is off), figures read
// from the DOM, the drawn data points of each chart, and a full-page screenshot.
//
// usage: node open-report.mjs REPORT.html SCREENSHOT.png [CHROMIUM]
import { pathToFileURL } from "node:url";
import puppeteer from "puppeteer-core";

const [report, shot, chromium = "/usr/bin/chromium"] = process.argv.slice(2);
if (!report || !shot) {
  console.error("usage: node open-report.mjs REPORT.html SCREENSHOT.png [CHROMIUM]");
  process.exit(2);
}
const url = pathToFileURL(report).href;
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    // No network at all: any host resolves nowhere.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
  ],
});
const out = { console_errors: [], page_errors: [], requests: [], failed: [] };
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  await page.setOfflineMode(true);
  await page.setRequestInterception(true);
  page.on("request", (r) => {
    out.requests.push(r.url());
    if (r.url() === url) r.continue();
    else r.abort("blockedbyclient");
  });
  page.on("requestfailed", (r) => out.failed.push(r.url()));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warn") out.console_errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => out.page_errors.push(String(e)));
  await page.goto(url, { waitUntil: "load" });
  // Click a heading of the sortable table: the script must run without errors.
  await page.evaluate(() => document.querySelector("table.sortable th:nth-child(3)")?.click());
  out.dom = await page.evaluate(() => {
    const text = (sel) => document.querySelector(sel)?.textContent ?? null;
    const all = (sel) => Array.from(document.querySelectorAll(sel));
    return {
      title: document.title,
      requests: text("#tile-requests"),
      p99: text("#tile-p99"),
      exit_code: text("#exit-code"),
      version: text("#meta-version"),
      started: text("#meta-start"),
      generators: text("#meta-generators"),
      command: text("#meta-command"),
      config: text("#meta-config"),
      thresholds: all("#thresholds tbody tr").map((tr) =>
        Array.from(tr.cells).map((c) => c.textContent),
      ),
      name_requests: all("#by-name td.requests").map((td) => td.textContent),
      name_p99: all("#by-name td.p99").map((td) => td.dataset.v),
      charts: all("figure.chart").map((f) => ({
        title: f.querySelector("figcaption")?.textContent,
        points: Number(f.dataset.points),
        lines: f.querySelectorAll("polyline").length,
        // Drawn: a polyline with a non-empty rendered box.
        drawn: Array.from(f.querySelectorAll("polyline")).filter((p) => {
          const b = p.getBBox();
          return b.width > 0 || b.height > 0;
        }).length,
      })),
      body: document.body.innerText,
    };
  });
  await page.screenshot({ path: shot, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
