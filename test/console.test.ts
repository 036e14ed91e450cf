// The web console in a real headless Chromium against a real `berth serve`: create a
// queue, send a message, see the depth change, peek at it (it stays visible), purge with
// confirmation, see depth 0; a topic and its subscription carry badges; also the server
// and cluster pages render. Screenshots go to
// test-artifacts/console/*.png (also on failure, for the last page seen).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CreateQueueCommand, GetQueueAttributesCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { artifactsDir, httpRequest, makeTempDir, sqsClient, startBerth, type BerthProcess } from './harness/server.js';

const chromiumPath = '/usr/bin/chromium';
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const screenshotDir = path.join(artifactsDir, 'console');
const waitMs = 15_000;

let server: BerthProcess | undefined;
let authServer: BerthProcess | undefined;
let browser: Browser | undefined;
const authDir = makeTempDir('berth-console-auth-');
after(async () => {
  await browser?.close().catch(() => undefined);
  await server?.stop();
  await authServer?.stop();
  authDir.remove();
});

async function launchBrowser(): Promise<Browser> {
  assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: run \`bash scripts/test.sh\` (it installs Debian's chromium) or \`apt-get install -y chromium\``);
  browser ??= await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, timeout: 30_000 });
  return browser;
}

async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`), fullPage: true });
}

/** Waits until the queue page's stat tile shows `value`. */
async function waitForStat(page: Page, stat: string, value: string): Promise<void> {
  await page.locator(`[data-stat="${stat}"] .stat-value`, { hasText: new RegExp(`^${value}$`) }).waitFor({ timeout: waitMs });
}

test('console: create a queue, send, peek, purge', { timeout: 120_000 }, async () => {
  const browser = await launchBrowser();
  server = await startBerth({ name: 'console' });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.setDefaultTimeout(waitMs);
  const queue = 'console-orders';
  const client = sqsClient(server.url);
  try {
    await page.goto(`${server.url}/console/`);
    await page.getByRole('heading', { name: 'Queues' }).waitFor();
    await screenshot(page, '01-queues-empty');

    // Create the queue from the console; it opens the queue's page.
    await page.getByRole('textbox', { name: 'New queue name' }).fill(queue);
    await page.getByRole('button', { name: 'Create queue' }).click();
    await page.getByRole('heading', { name: queue }).waitFor();
    await waitForStat(page, 'visible', '0');
    const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: queue }));
    assert.ok(QueueUrl, 'the queue the console created exists for SQS clients');

    // Send a test message and watch the depth change.
    await page.getByRole('textbox', { name: 'Message body' }).fill('hello from the console');
    await page.getByRole('button', { name: 'Send message' }).click();
    await page.getByRole('status').filter({ hasText: 'Sent message' }).waitFor();
    await waitForStat(page, 'visible', '1');
    await screenshot(page, '02-queue-after-send');

    // Peek: the message shows, and stays visible (peek does not receive).
    await page.getByRole('button', { name: 'Peek messages' }).click();
    await page.getByRole('table', { name: 'Peeked messages' }).getByText('hello from the console').waitFor();
    const attributes = await client.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
    assert.equal(attributes.Attributes?.ApproximateNumberOfMessages, '1');
    assert.equal(attributes.Attributes?.ApproximateNumberOfMessagesNotVisible, '0');
    await screenshot(page, '03-queue-peek');

    // Purge asks first; cancelling leaves the message, confirming removes it.
    await page.getByRole('button', { name: 'Purge queue' }).click();
    const dialog = page.getByRole('dialog', { name: `Purge ${queue}?` });
    await dialog.waitFor();
    await screenshot(page, '04-purge-confirm');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    await waitForStat(page, 'visible', '1');
    await page.getByRole('button', { name: 'Purge queue' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm purge' }).click();
    await page.getByRole('status').filter({ hasText: `Purged ${queue}` }).waitFor();
    await waitForStat(page, 'visible', '0');
    await screenshot(page, '05-queue-purged');

    // The queue list shows the queue with depth 0.
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Queues' }).click();
    const row = page.locator(`tr[data-queue="${queue}"]`);
    await row.locator('[data-column="visible"]', { hasText: /^0$/ }).waitFor();

    // A topic and its subscription carry badges; the subscription's links to its topic.
    await client.send(new CreateQueueCommand({ QueueName: 'console-news', Attributes: { 'Berth.Kind': 'topic' } as never }));
    await client.send(new CreateQueueCommand({ QueueName: 'console-news-a', Attributes: { 'Berth.Topic': 'console-news' } as never }));
    await page.locator('tr[data-queue="console-news"] .badge', { hasText: /^topic$/ }).waitFor();
    await page.locator('tr[data-queue="console-news-a"] .badge', { hasText: 'subscription of console-news' }).getByRole('link', { name: 'console-news' }).click();
    await page.getByRole('heading', { name: /^console-news topic$/ }).waitFor();
    await screenshot(page, '05b-topic');
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Queues' }).click();

    // Server and cluster pages render their charts and tables.
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Server' }).click();
    await page.getByRole('img', { name: /Server throughput per second/ }).waitFor();
    await page.getByRole('img', { name: /Request latency/ }).waitFor();
    await screenshot(page, '06-server');
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Cluster' }).click();
    await page.getByRole('table', { name: 'Partitions' }).getByRole('link', { name: queue }).waitFor();
    await screenshot(page, '07-cluster');

    // A deep link loads through the SPA fallback.
    await page.goto(`${server.url}/console/queues/${queue}`);
    await page.getByRole('heading', { name: queue }).waitFor();
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  } catch (error) {
    await screenshot(page, 'failure').catch(() => undefined);
    throw error;
  } finally {
    client.destroy();
  }
});

test('console with auth on: sign in with an access key pair; API and metrics refuse anonymous calls', { timeout: 90_000 }, async () => {
  const browser = await launchBrowser();
  const authFile = `${authDir.path}/auth.json`;
  writeFileSync(authFile, JSON.stringify({ credentials: [{ accessKeyId: 'AKIDCONSOLE', secretAccessKey: 'console-secret' }] }));
  authServer = await startBerth({ name: 'console-auth', args: ['--auth-file', authFile] });
  assert.equal((await httpRequest(authServer.url, { path: '/console/api/queues' })).status, 401);
  assert.equal((await httpRequest(authServer.url, { path: '/metrics' })).status, 401);
  const basic = `Basic ${Buffer.from('AKIDCONSOLE:console-secret').toString('base64')}`;
  assert.equal((await httpRequest(authServer.url, { path: '/metrics', headers: { authorization: basic } })).status, 200);

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(waitMs);
  try {
    await page.goto(`${authServer.url}/console/`);
    await page.getByRole('textbox', { name: 'Access key id' }).fill('AKIDCONSOLE');
    await page.getByLabel('Secret access key').fill('not-the-secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'did not accept' }).waitFor();
    await page.getByLabel('Secret access key').fill('console-secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Queues' }).waitFor();
    await page.getByRole('textbox', { name: 'New queue name' }).fill('console-signed-in');
    await page.getByRole('button', { name: 'Create queue' }).click();
    await page.getByRole('heading', { name: 'console-signed-in' }).waitFor();
    await screenshot(page, '08-signed-in');
    await page.getByRole('button', { name: /Sign out/ }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  } catch (error) {
    await screenshot(page, 'failure-auth').catch(() => undefined);
    throw error;
  } finally {
    await context.close();
  }
});
