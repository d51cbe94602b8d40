// Drives Debian's chromium to the explorer's Captures page and reports what it
// saw as one JSON line: {checks: [[name, ok, diag]], facts}. The test around it
// (t/integration/explorer_captures.t) makes the capture.
import path from 'node:path';
import { open } from './session.mjs';

const { cfg, P, facts, check, page, dialogs, pageErrors, finish } = await open();

const table = () => page.$$eval('#captures tbody tr', trs => trs.map(tr =>
    [...tr.children].map(td => td.textContent)));
try {
    await page.goto(P + '/captures');
    await page.waitForFunction(id => document.body.textContent.includes(id), cfg.id, { timeout: 30000 });
    const rows = await table();
    facts.rows = rows;
    const row = rows.find(r => r[0].includes(cfg.id));
    check('the Captures page lists the capture', row, JSON.stringify(rows));
    check('…with its rule and trigger', row && row[1] === 'stuck' && row[2].includes('request-age>2s'),
          JSON.stringify(row));
    check('…the process', row && row[3].includes(String(cfg.pid)), JSON.stringify(row));
    check('…the request', row && row[4].includes(cfg.uri), JSON.stringify(row));
    check('…and its artifacts', row && row[5].includes('stacks.json') && row[5].includes('requests.json'),
          JSON.stringify(row));
    const link = await page.$(`#captures a[href$="/captures/${cfg.id}/stacks.json"]`);
    check('an artifact is a link to its download', link);
    await page.screenshot({ path: path.join(cfg.out_dir, 'captures-desktop.png') });
    // a locator, not a handle: the page redraws its rows every 3 s, and a
    // handle taken before a redraw is detached by the time a busy machine clicks
    await page.locator('#captures tbody tr button').first().click();
    await page.waitForFunction(() => document.body.textContent.includes('No capture yet.'),
                               null, { timeout: 15000 });
    check('Remove removes it', true);
    check('no dialog opened', dialogs.length === 0, JSON.stringify(dialogs));
    check('no script error', pageErrors.length === 0, JSON.stringify(pageErrors));
} catch (e) {
    check('the browser script ran to its end', false, e.stack);
}
await finish();
