// browser_dashboard_test: the admin dashboard (GET / on the admin listener) in headless Debian
// Chromium while MQTT.js clients in Node make traffic: the numbers the page shows must be the
// traffic's, its readiness table must name the finding a client caused, and its Drain button
// must disconnect the device it names (MQTT 5 DISCONNECT 0x9C) and report "done".
//
//   node tests/browser/dashboard_test.mjs TERN_BINARY [--screenshot FILE.png]
//
// Exit 0 on success, 1 on failure, 77 when Chromium or node_modules are missing outside CI
// (see websocket_test.mjs). The screenshot (the page after the drain) is the test's artifact.

import {
  browserTestSetup, cleanups, fail, freePort, launchChromium, runTest, startTern, tempDir, waitFor,
} from './harness.mjs';

const overallTimeoutMs = 60_000;
const { ternBinary, screenshot, chromium, chromiumPath, mqtt } =
  browserTestSetup('dashboard_test.mjs', 'TERN_DASHBOARD_SCREENSHOT');

async function connect(port, clientId, options = {}) {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`,
    { clientId, reconnectPeriod: 0, connectTimeout: 5000, ...options });
  cleanups.push(() => c.endAsync(true));
  return c;
}

async function main() {
  const dir = tempDir('tern-dashboard-test-');
  const adminPort = await freePort();
  const tern = await startTern(ternBinary, dir, [
    'listener 0 127.0.0.1',
    'allow_anonymous true',
    `admin_listener ${adminPort} 127.0.0.1`,
    'readiness_report true',
  ], 1);
  const port = tern.ports[0];

  // Four subscribers (one of them MQTT 5 with a 5 s keep-alive: a readiness finding, and the
  // device the drain will move), one publisher of 50 QoS 1 messages: 200 deliveries.
  const subscribers = [];
  for (let i = 0; i < 3; i++) {
    subscribers.push(await connect(port, `dash-dev-${i}`));
  }
  const mover = await connect(port, 'dash-mover', { protocolVersion: 5, keepalive: 5 });
  subscribers.push(mover);
  let moverReason = null;
  mover.on('disconnect', (packet) => { moverReason = packet.reasonCode; });
  for (const s of subscribers) {
    await s.subscribeAsync('dash/#', { qos: 1 });
  }
  const publisher = await connect(port, 'dash-pub');
  for (let i = 0; i < 50; i++) {
    await publisher.publishAsync('dash/telemetry', `m${i}`, { qos: 1 });
  }

  const context = await launchChromium(chromium, chromiumPath);
  const page = context.pages()[0] ?? await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`page error: ${e.message}`));
  const shown = (id) => page.evaluate((i) => document.getElementById(i).textContent, id);
  try {
    await page.goto(`http://127.0.0.1:${adminPort}/`);
    await waitFor('the page to show the traffic', 15_000, async () =>
      ((await shown('connections')) === '5' && (await shown('received-total')) === '50' &&
       (await shown('sent-total')) === '200') ? true : undefined);
    if ((await shown('subscriptions')) !== '4') {
      fail(`subscriptions shown: ${await shown('subscriptions')}, expected 4`);
    }
    await waitFor('the readiness table', 15_000, async () =>
      (await page.evaluate(() => document.getElementById('readiness').textContent))
        .includes('keep_alive_out_of_range') ? true : undefined);
    const example = await page.evaluate(() => document.getElementById('readiness').textContent);
    if (!example.includes('dash-mover')) {
      fail(`the readiness table does not name dash-mover: ${example}`);
    }

    // Phase 2 from the page: drain the one device.
    await page.fill('#drain-pattern', 'dash-mover');
    await page.fill('#drain-rate-in', '5');
    await page.fill('#drain-ref', 'iot.example.com:8883');
    await page.click('#drain-start');
    await waitFor('the drain to finish', 15_000, async () =>
      ((await shown('drain-state')) === 'done' ? true : undefined));
    await waitFor('the device to be told', 5_000, () => (moverReason !== null ? true : undefined));
    if (moverReason !== 0x9c) {
      fail(`dash-mover got DISCONNECT reason ${moverReason}, expected 0x9c (Use another server)`);
    }
    await waitFor('the page to count the drained device out', 15_000, async () =>
      ((await shown('connections')) === '4' ? true : undefined));
    if (screenshot) {
      await page.screenshot({ path: screenshot, fullPage: true });
      console.log(`screenshot: ${screenshot}`);
    }
    const errors = consoleLines.filter((l) => l.startsWith('page error') || l.includes('console.error'));
    if (errors.length > 0) {
      fail(`the page logged errors:\n${errors.join('\n')}`);
    }
    console.log('PASS: the dashboard showed 5 clients, 50 in, 200 out, the readiness finding, '
      + 'and drained dash-mover with 0x9C');
  } catch (err) {
    console.error(consoleLines.join('\n'));
    console.error(`tern log:\n${tern.log()}`);
    throw err;
  }
}

await runTest(main, overallTimeoutMs);
