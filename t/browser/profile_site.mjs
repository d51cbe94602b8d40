// Drives Debian's chromium to the Requests page's profile of the whole site
// as an operator would, and reports what it saw as one JSON line:
// {checks: [[name, ok, diag]], facts}. The test around it
// (t/integration/explorer_profile_site.t) keeps the site busy.
import path from 'node:path';
import { open } from './session.mjs';

const { cfg, P, facts, check, page, dialogs, pageErrors, finish } = await open();

/* each drawn frame: its text and width as a share (%) of the root's */
const frames = () => page.$$eval('#flame .fg-f', bs => {
    const all = bs[0] ? bs[0].getBoundingClientRect().width : 1;
    return bs.map(b => ({ text: b.textContent, pct: 100 * b.getBoundingClientRect().width / all }));
});
const share = (fs, name) => fs.filter(f => f.text.startsWith(name + ' (')).reduce((a, f) => a + f.pct, 0);
try {
    await page.goto(`${P}/requests`);
    await page.waitForSelector('#prof-go', { timeout: 30000 });
    check('the Requests page offers a profile of the whole site', true);
    await page.selectOption('#prof-secs', '10');
    await page.click('#prof-go');
    await page.waitForSelector('#flame .fg-f', { timeout: 90000 });
    facts.note = await page.$eval('#flame', g => g.parentElement.previousElementSibling.textContent);
    const fs = await frames();
    const work = Object.fromEntries(['cheap', 'costly', 'fpm'].map(k => [k, share(fs, `${k}_work`)]));
    const sum = work.cheap + work.costly + work.fpm;
    facts.work = Object.fromEntries(Object.entries(work).map(([k, v]) => [k, +(100 * v / (sum || 1)).toFixed(1)]));
    // the two mod_php URLs (one worker thread) in about their costs' ratio,
    // 3:1; php-fpm's well present (across processes the scheduler decides
    // more than the sampler on a busy machine: profile_site.t)
    const ratio = facts.work.cheap ? facts.work.costly / facts.work.cheap : 0;
    check('the widths follow the costs: costly_work / cheap_work between 1.5 and 6, fpm_work at least 3 %',
          ratio >= 1.5 && ratio <= 6 && facts.work.fpm >= 3, JSON.stringify(facts.work));
    const roots = fs.filter(f => f.text.startsWith('[url '));
    facts.roots = roots.map(f => [f.text, +f.pct.toFixed(1)]);
    check('a request of each URL is a frame under the root',
          cfg.urls.every(u => roots.some(f => f.text.endsWith(u + ']'))), JSON.stringify(facts.roots));
    const opts = await page.$$eval('#prof-url option', os => os.map(o => [o.value, o.textContent]));
    facts.options = opts;
    check('the URL list names every request of the profile, and "every request"',
          opts[0][0] === '' && cfg.urls.every(u => opts.some(([v]) => v.endsWith(u + ']'))), JSON.stringify(opts));
    await page.mouse.move(1, 1);
    await page.screenshot({ path: path.join(cfg.out_dir, 'profile-site-desktop.png'), fullPage: true });

    // one URL: only its stacks are drawn, under its own request frame
    const costly = opts.find(([v]) => v.endsWith(cfg.urls[1] + ']'))[0];
    await page.selectOption('#prof-url', costly);
    await page.waitForFunction(() => ![...document.querySelectorAll('#flame .fg-f')]
        .some(b => b.textContent.startsWith('cheap_work (')), null, { timeout: 5000 });
    const fc = await frames();
    check('one URL chosen: its request frame takes the whole width, no other request is drawn',
          fc[1] && fc[1].text === costly && fc[1].pct > 99.5 && !fc.some(f => f.text.startsWith('[url ') && f.text !== costly),
          JSON.stringify(fc.slice(0, 4)));
    check('…and its work, costly_work(), is drawn', share(fc, 'costly_work') > 50, JSON.stringify(fc.slice(0, 12)));
    await page.selectOption('#prof-url', '');
    await page.waitForFunction(() => [...document.querySelectorAll('#flame .fg-f')]
        .some(b => b.textContent.startsWith('cheap_work (')), null, { timeout: 5000 });
    check('…"every request" draws them all again', true);
    check('no dialog opened', dialogs.length === 0, JSON.stringify(dialogs));
    check('no script error', pageErrors.length === 0, JSON.stringify(pageErrors));
} catch (e) {
    check('the browser script ran to its end', false, e.stack);
}
await finish();
