// What every browser script starts with: its configuration (argv[2], from
// t/lib/browser.py's caller), Debian's chromium with one page, the checks and
// facts it reports as one JSON line at its end, and the page's dialogs and
// script errors (which every script checks are none).
export async function open({ viewport = { width: 1280, height: 700 }, acceptDownloads = false } = {}) {
    const cfg = JSON.parse(process.argv[2]);
    const { chromium } = await import(cfg.playwright);
    const checks = [], facts = {}, dialogs = [], pageErrors = [];
    const check = (name, ok, diag) => checks.push([name, !!ok, ok ? '' : String(diag ?? '')]);
    const browser = await chromium.launch({ executablePath: cfg.chromium, args: cfg.flags });
    const ctx = await browser.newContext({ acceptDownloads, viewport });
    const page = await ctx.newPage();
    page.on('dialog', d => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
    page.on('pageerror', e => pageErrors.push(String(e)));
    page.on('console', m => { if (m.type() === 'error') pageErrors.push(m.text()); });
    const finish = async () => {
        await browser.close();
        console.log(JSON.stringify({ checks, facts }));
    };
    return { cfg, P: cfg.base + cfg.prefix, checks, facts, check, browser, ctx, page,
             dialogs, pageErrors, finish };
}
