// One step of the UI tour in a real headless Chromium (Debian's), driven by playwright-core.
//
//   node tour.mjs <step> '<json args>'
//
// Every step gets {base, state, shots, ...}: the Airflow URL, the signed-in storage state
// file (written by "login", reused by the others) and the screenshot folder. It prints one
// JSON object on stdout (what the pytest side asserts on) and exits non-zero on failure,
// after a screenshot of the page as it was ("<step>-failure.png").
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.env.PLAYWRIGHT_HOME, 'package.json'));
const { chromium } = require('playwright-core');

const [step, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs || '{}');
const TIMEOUT = args.timeout_ms ?? 30000;
const VIEWPORT = { width: 1440, height: 900 };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // Containers and CI runners often lack the user namespaces Chromium's sandbox needs.
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
const context = await browser.newContext({
  viewport: VIEWPORT,
  storageState: step === 'login' ? undefined : args.state,
});
context.setDefaultTimeout(TIMEOUT);
const page = await context.newPage();
const shot = (name, options = {}) =>
  page.screenshot({ path: path.join(args.shots, `${name}.png`), ...options });

async function iframeText(frameSelector = 'iframe') {
  const frame = page.frameLocator(frameSelector);
  await frame.locator('main h1').first().waitFor();
  return frame.locator('main').innerText();
}

const steps = {
  // Sign in through Airflow's own login page; an anonymous browser cannot see the app.
  async login() {
    const anonymous = await browser.newContext({ viewport: VIEWPORT });
    const probe = await anonymous.newPage();
    await probe.goto(`${args.base}/mlops/models`);
    await probe.waitForURL(/\/auth\/login/);
    const anonymousLanding = new URL(probe.url()).pathname + new URL(probe.url()).search;
    await anonymous.close();

    await page.goto(`${args.base}/`);
    await page.waitForURL(/\/auth\/login/);
    await page.getByLabel('Username').fill(args.user);
    await page.getByLabel('Password').fill(args.password);
    await shot('00-sign-in');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => !url.pathname.startsWith('/auth'));
    await page.getByRole('heading', { name: 'Welcome' }).waitFor();
    await page.getByText('MetaDatabase').first().waitFor(); // the dashboard has loaded
    await page.waitForFunction(() => {
      const icons = [...document.querySelectorAll('img[src*="/mlops/static/"]')];
      return icons.length === 3 && icons.every((img) => img.complete && img.naturalWidth > 0);
    });
    // The plugin's views join Airflow's navigation bar once the UI has loaded its plugins.
    const nav = [];
    for (const name of ['Models', 'Monitoring', 'Lake']) {
      await page.getByRole('link', { name, exact: true }).waitFor();
      nav.push(name);
    }
    await shot('01-home');
    await context.storageState({ path: args.state });
    return { anonymousLanding, nav };
  },

  // Each platform view from Airflow's navigation, rendered in the UI's frame.
  async views() {
    const seen = {};
    await page.goto(`${args.base}/`);
    for (const [name, file] of args.views) {
      await page.getByRole('link', { name, exact: true }).click();
      await page.waitForURL(new RegExp(`/plugin/mlops-${name.toLowerCase()}$`));
      seen[name] = await iframeText();
      await page.waitForTimeout(300); // let the frame finish painting before the shot
      await shot(file);
    }
    return { seen };
  },

  // A page of the app opened directly (e.g. the Monitoring view of one model).
  async page() {
    await page.goto(`${args.base}${args.path}`);
    await page.locator('main h1').first().waitFor();
    const text = await page.locator('main').innerText();
    await shot(args.shot, { fullPage: !!args.full_page });
    return { url: page.url(), text };
  },

  // A task instance page → its extra link → the report, served by the app.
  async extra_link() {
    await page.goto(`${args.base}${args.task_path}/details`);
    await page.getByRole('heading', { name: 'Extra Links' }).waitFor();
    const links = page.getByRole('link', { name: args.link, exact: true });
    const href = await links.first().getAttribute('href');
    const buttons = await page
      .locator('a[href^="/mlops/"], a[href^="http"]')
      .evaluateAll((as) => as.map((a) => a.textContent.trim()));
    await shot(args.task_shot);
    await links.first().click();
    await page.waitForURL((url) => url.pathname.startsWith('/mlops/files/'));
    await page.waitForLoadState('load');
    if (args.expect_image) {
      await page.locator(`img[src*="${args.expect_image}"]`).first().waitFor();
      // the plot really arrived (an <img> whose request was refused has no natural width)
      const width = await page
        .locator(`img[src*="${args.expect_image}"]`)
        .first()
        .evaluate((img) => img.naturalWidth);
      if (!width) throw new Error(`plot ${args.expect_image} did not load`);
      await page.locator(`img[src*="${args.expect_image}"]`).first().scrollIntoViewIfNeeded();
      await page.mouse.wheel(0, -120); // keep the section title above the plot in the shot
    }
    const text = await page.locator('body').innerText();
    await shot(args.report_shot, { fullPage: false });
    return { href, url: page.url(), text: text.slice(0, 4000), buttons };
  },

  // The trigger form: defaults as shipped, a bad value refused with a message, then a run.
  async trigger() {
    await page.goto(`${args.base}/dags/${args.dag_id}`);
    await page.getByRole('button', { name: 'Trigger Dag' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('Run Parameters').waitFor();
    const submit = dialog.getByRole('button', { name: 'Trigger', exact: true });
    const enabledWithDefaults = await submit.isEnabled();
    await shot(`${args.shot}-defaults`);
    for (const [name, value] of Object.entries(args.bad)) {
      await dialog.locator(`#element_${name}`).fill(String(value));
    }
    await submit.click();
    const refusal = dialog.getByText(args.refusal_text).first();
    await refusal.waitFor();
    const refusedMessage = await refusal.innerText();
    await refusal.scrollIntoViewIfNeeded();
    await shot(`${args.shot}-refused`);
    // The "Failed to trigger" toast covers the button for a few seconds (and stays while
    // the pointer rests on it, which it does right after the click): move away and wait.
    await page.mouse.move(5, 5);
    await page.locator('[data-scope="toast"][data-part="root"]').first()
      .waitFor({ state: 'hidden', timeout: 20000 }).catch(() => {});
    for (const [name, value] of Object.entries(args.good)) {
      await dialog.locator(`#element_${name}`).fill(String(value));
    }
    await submit.click();
    await dialog.waitFor({ state: 'hidden' });
    await page.waitForTimeout(1500);
    await shot(`${args.shot}-triggered`);
    return { enabledWithDefaults, refusedMessage };
  },

  // Required Actions → the pending approval → comment → Approve.
  async approve() {
    await page.goto(`${args.base}/required_actions`);
    await page.getByText(args.subject).first().click();
    await page.getByRole('button', { name: 'Approve', exact: true }).waitFor();
    const approveButton = page.getByRole('button', { name: 'Approve', exact: true });
    const enabledBeforeComment = await approveButton.isEnabled();
    const body = await page.locator('body').innerText();
    await page.locator('#element_comment').fill(args.comment);
    await page.waitForFunction(
      () => !document.querySelector('[data-testid="hitl-option-Approve"]')?.disabled,
    );
    await shot('06-required-action');
    await approveButton.click();
    const receipt = page.getByText(/Response received at .* from /).first();
    await receipt.waitFor();
    const received = await receipt.innerText();
    await shot('07-approved');
    return { enabledBeforeComment, received, body: body.slice(0, 3000), url: page.url() };
  },
};

try {
  if (!steps[step]) throw new Error(`unknown step ${step}`);
  const result = await steps[step]();
  process.stdout.write(JSON.stringify({ ok: true, ...result }));
} catch (error) {
  await shot(`${step}-failure`).catch(() => {});
  process.stdout.write(JSON.stringify({ ok: false, error: String(error.stack || error), url: page.url() }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
