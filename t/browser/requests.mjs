// Drives Debian's chromium to the explorer's Requests page as an operator
// would, and reports what it saw as one JSON line: {checks: [[name, ok, diag]], facts}.
// The test around it (t/integration/explorer_requests.t) holds the requests.
import path from 'node:path';
import { open } from './session.mjs';

const { cfg, P, facts, check, page, dialogs, pageErrors, finish } = await open();

const table = () => page.$$eval('#requests tbody tr', trs => trs.map(tr =>
    [...tr.children].map(td => td.textContent)));
try {
    await page.goto(P + '/requests');
    await page.waitForFunction(uri => [...document.querySelectorAll('#requests tbody tr td:nth-child(2)')]
        .some(td => td.textContent.includes(uri)), cfg.php_uri, { timeout: 30000 });
    // the where cell fills in once the stacks are read
    await page.waitForFunction(() => [...document.querySelectorAll('#requests tbody tr td:nth-child(4)')]
        .some(td => td.textContent.includes('Report::build')), null, { timeout: 30000 });
    const rows = await table();
    facts.rows = rows;
    const php = rows.find(r => r[1].includes(cfg.php_uri));
    check('the Requests page lists the PHP request by its URI', php, JSON.stringify(rows));
    check('…with its client', php && php[2] === '127.0.0.1', JSON.stringify(php));
    check('…and where: Report::build with its file and line',
          php && php[3].includes(`Report::build  ${cfg.php_file}:${cfg.php_line}`), JSON.stringify(php));
    check('…and PHP', php && php[3].includes('PHP 8.2'), JSON.stringify(php));
    const ages = rows.map(r => parseFloat(r[0])).filter(x => !isNaN(x));
    check('oldest first', ages.every((a, i) => i === 0 || ages[i - 1] >= a), JSON.stringify(ages));
    await page.waitForFunction(() => [...document.querySelectorAll('#requests tbody tr td:nth-child(4)')]
        .some(td => td.textContent.includes('Checkout::charge')), null, { timeout: 30000 });
    const fpm = (await table()).find(r => r[1].includes(cfg.fpm_uri));
    check('a request proxied to php-fpm: its backend, the child at the other end of the socket',
          fpm && fpm[3].includes(`unix ${cfg.fpm_sock} → pid ${cfg.fpm_child}`), JSON.stringify(fpm));
    check("…that child's PHP frame", fpm && fpm[3].includes(`Checkout::charge  ${cfg.fpm_file}:${cfg.fpm_line}`),
          JSON.stringify(fpm));
    check("…and the child's own record of the request",
          fpm && fpm[3].includes("runtime's request: GET /fpm_page.php?cart=7"), JSON.stringify(fpm));
    const evil = rows.find(r => r[1].includes(cfg.evil_uri));
    check('a URI with markup is shown as its text', evil, JSON.stringify(rows));
    check('…and makes no element', !(await page.$('#requests img')), await page.content());
    await page.screenshot({ path: path.join(cfg.out_dir, 'requests-desktop.png') });
    // the link to the serving process's stacks opens its Stacks tab
    const link = await page.$(`#requests a[href$="/${cfg.php_pid}#stacks"]`);
    check('where links to the stacks of the process that serves it', link);
    if (link) {
        await link.click();
        await page.waitForSelector('#tab-stacks[aria-selected=true]', { timeout: 15000 });
        await page.waitForFunction(() => document.body.textContent.includes('Report::build'),
                                   null, { timeout: 30000 });
        check('…its Stacks tab opens, showing the same frame', true);
        facts.detail_url = page.url();
    }
    check('no dialog opened', dialogs.length === 0, JSON.stringify(dialogs));
    check('no script error', pageErrors.length === 0, JSON.stringify(pageErrors));
} catch (e) {
    check('the browser script ran to its end', false, e.stack);
}
await finish();
