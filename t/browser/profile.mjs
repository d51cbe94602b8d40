// Drives Debian's chromium to a process's Profile tab as an operator would,
// and reports what it saw as one JSON line: {checks: [[name, ok, diag]], facts}.
// The test around it (t/integration/explorer_profile.t) runs the target.
import path from 'node:path';
import { open } from './session.mjs';

const { cfg, P, facts, check, page, dialogs, pageErrors, finish } = await open();

/* each drawn frame: its text, title and width as a share (%) of the root's */
const frames = () => page.$$eval('#flame .fg-f', bs => {
    const all = bs[0] ? bs[0].getBoundingClientRect().width : 1;
    return bs.map(b => ({ text: b.textContent, title: b.title, pct: 100 * b.getBoundingClientRect().width / all }));
});
const share = (fs, name) => fs.filter(f => f.text.startsWith(name + ' (')).reduce((a, f) => a + f.pct, 0);
try {
    // a Location without `profile` offers no Profile tab
    await page.goto(cfg.base + cfg.ro_prefix + '/' + cfg.pid);
    await page.waitForSelector('#tab-stacks', { timeout: 30000 });
    check('without `profile` allowed, no Profile tab', !(await page.$('#tab-profile')));

    await page.goto(`${P}/${cfg.pid}#profile`);
    await page.waitForSelector('#tab-profile[aria-selected=true]', { timeout: 30000 });
    check('the Profile tab opens', true);
    await page.selectOption('#prof-secs', '10');   // enough samples on a loaded machine
    await page.click('#prof-go');
    await page.waitForSelector('#flame .fg-f', { timeout: 60000 });
    facts.note = await page.$eval('#panel p.note', p => p.textContent);
    const fs = await frames();
    const s70 = share(fs, 'seventy'), s30 = share(fs, 'thirty');
    facts.seventy = s70.toFixed(1);
    facts.thirty = s30.toFixed(1);
    facts.frames = fs.length;
    check('the flame graph shows seventy()', fs.some(f => f.text.startsWith('seventy (')), JSON.stringify(fs));
    check('…and thirty()', fs.some(f => f.text.startsWith('thirty (')), JSON.stringify(fs));
    const drawn = JSON.stringify(fs.map(f => [f.text.split(' (')[0], +f.pct.toFixed(1)]));
    check('seventy() is about 70 % of the width (± 10)', Math.abs(s70 - 70) <= 10, `${s70} ${drawn}`);
    check('thirty() is about 30 % of the width (± 10)', Math.abs(s30 - 30) <= 10, `${s30} ${drawn}`);
    const t70 = fs.find(f => f.text.startsWith('seventy ('));
    check("a frame's title gives its text and share",
          t70 && t70.title.startsWith(t70.text + '\n') && /\d+(\.\d)? % \(\d+ samples\)$/.test(t70.title),
          t70 && t70.title);
    check("the script's path, markup, is a frame's text",
          fs.some(f => f.text.includes(cfg.evil)), JSON.stringify(fs.map(f => f.text)));
    check('…and makes no element', !(await page.$('#flame img')), await page.$eval('#flame', e => e.innerHTML));
    await page.$eval('#tab-profile', e => e.scrollIntoView());
    await page.mouse.move(1, 1);
    await page.screenshot({ path: path.join(cfg.out_dir, 'profile-desktop.png') });

    // the filter keeps the stacks that hold its text: thirty() then takes the whole width
    await page.fill('#prof-filter', 'THIRTY');
    await page.waitForFunction(() => ![...document.querySelectorAll('#flame .fg-f')]
        .some(b => b.textContent.startsWith('seventy (')), null, { timeout: 5000 });
    const ft = await frames();
    check('the filter (any case) keeps only the stacks with thirty()', share(ft, 'thirty') > 99
          && !ft.some(f => f.text.startsWith('seventy (')), JSON.stringify(ft));
    await page.fill('#prof-filter', 'no such frame');
    await page.waitForFunction(() => !document.querySelector('#flame .fg-f'), null, { timeout: 5000 });
    check('…a text no frame holds leaves none', true);
    await page.fill('#prof-filter', '');
    await page.waitForSelector('#flame .fg-f', { timeout: 5000 });
    // a click zooms into a frame; a click on the top frame goes back
    await page.click('#flame .fg-f >> text=/^seventy \\(/');
    const fz = await frames();
    check('a click on seventy() zooms into it: its frame takes the whole width',
          fz[0] && fz[0].text.startsWith('seventy (') && fz.length >= 1, JSON.stringify(fz.slice(0, 3)));
    await page.click('#flame .fg-f >> nth=0');
    const fb = await frames();
    check('…a click on the top frame goes back', Math.abs(share(fb, 'seventy') - s70) < 0.5,
          JSON.stringify(fb.slice(0, 3)));
    check('no dialog opened', dialogs.length === 0, JSON.stringify(dialogs));
    check('no script error', pageErrors.length === 0, JSON.stringify(pageErrors));
} catch (e) {
    check('the browser script ran to its end', false, e.stack);
}
await finish();
