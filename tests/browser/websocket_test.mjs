// browser_websocket_test: MQTT.js (npm `mqtt` v5, its browser bundle) in headless Debian
// Chromium, over WSS to a tern started here, and a plain TCP MQTT.js client in Node next to it.
//
//   node tests/browser/websocket_test.mjs TERN_BINARY [--screenshot FILE.png]
//
// It starts `tern --port 0 --port-file F -c CONF` (a plain listener and a WSS listener with a
// throw-away self-signed certificate for 127.0.0.1), serves index.html and mqtt.min.js from a
// static server on 127.0.0.1 (ephemeral port), and opens the page in Chromium
// (/usr/bin/chromium, never a downloaded browser) driven by playwright-core. The page connects
// over wss, subscribes, publishes to itself and reports the round trip; Node then publishes over
// plain TCP and the page must receive that too. Exit 0 on success, 1 on failure. When
// node_modules or Chromium is missing: 77 (ctest SKIP_RETURN_CODE) for a developer who has not
// run tools/install-deps.sh, but 1 under CI (CI=true), where install-deps must have put them
// there — a skipped browser test in CI would hide a broken install step.
//
// Trust: Chromium is told to accept exactly this certificate, by the SHA-256 of its public key
// (--ignore-certificate-errors-spki-list), not every certificate.
//
// It stops only what it started (tern by its pid, the browser, the server) and removes its
// temporary directories, so it can run any number of times, also in parallel.

import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  browserTestSetup, cleanups, fail, launchChromium, runTest, startTern, tempDir, waitFor,
} from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const overallTimeoutMs = 60_000;
const { ternBinary, screenshot, chromium, chromiumPath, mqtt, skip } =
  browserTestSetup('websocket_test.mjs', 'TERN_BROWSER_SCREENSHOT');
// The browser bundle (not in the package's exports map: found by path).
const mqttBundle = path.join(here, 'node_modules', 'mqtt', 'dist', 'mqtt.min.js');
if (!fs.existsSync(mqttBundle)) {
  skip(`no ${mqttBundle} (run: npm ci --prefix tests/browser, or tools/install-deps.sh)`);
}

/// A self-signed EC certificate for 127.0.0.1 and the base64 SHA-256 of its SubjectPublicKeyInfo.
function makeCertificate(dir) {
  const key = path.join(dir, 'server.key');
  const cert = path.join(dir, 'server.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'pipe' });
  const der = execFileSync('openssl', ['x509', '-in', cert, '-pubkey', '-noout']);
  const spkiDer = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: der });
  const hash = execFileSync('openssl', ['dgst', '-sha256', '-binary'], { input: spkiDer });
  return { key, cert, spki: hash.toString('base64') };
}

async function startWebSocketTern(dir, tls) {
  // The first listener is replaced by --port 0 --port-file; the second is WSS.
  const t = await startTern(ternBinary, dir, [
    'listener 0 127.0.0.1',
    'allow_anonymous true',
    'listener 0 127.0.0.1',
    'protocol websockets',
    `certfile ${tls.cert}`,
    `keyfile ${tls.key}`,
  ], 2);
  return { plain: t.ports[0], wss: t.ports[1], log: t.log };
}

/// index.html and the mqtt browser bundle on 127.0.0.1, an ephemeral port.
async function startStaticServer() {
  const files = {
    '/': [path.join(here, 'index.html'), 'text/html; charset=utf-8'],
    '/mqtt.min.js': [mqttBundle, 'text/javascript; charset=utf-8'],
  };
  const server = createServer((req, res) => {
    const file = files[new URL(req.url, 'http://127.0.0.1').pathname];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': file[1], 'Cache-Control': 'no-store' });
    fs.createReadStream(file[0]).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return server.address().port;
}

async function main() {
  const dir = tempDir('tern-browser-test-');
  const tls = makeCertificate(dir);
  const tern = await startWebSocketTern(dir, tls);
  const httpPort = await startStaticServer();
  const id = `browser-${process.pid}`;

  const context = await launchChromium(chromium, chromiumPath,
    [`--ignore-certificate-errors-spki-list=${tls.spki}`]);
  const page = context.pages()[0] ?? await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`page error: ${e.message}`));

  try {
    await page.goto(`http://127.0.0.1:${httpPort}/?port=${tern.wss}&id=${id}`);
    await waitFor('the page to subscribe', 15_000,
      async () => ((await page.evaluate(() => window.ternReady || window.ternResult?.ok === false))
        ? true : undefined));
    const early = await page.evaluate(() => window.ternResult);
    if (early && early.ok === false) {
      fail(`page: ${early.detail}`);
    }
    // A plain TCP MQTT client reaches the browser's WebSocket connection.
    const node = await mqtt.connectAsync(`mqtt://127.0.0.1:${tern.plain}`,
      { clientId: `${id}-node`, reconnectPeriod: 0, connectTimeout: 5000 });
    cleanups.push(() => node.endAsync());
    await node.publishAsync(`browser/${id}/from-node`, 'hello from node over tcp', { qos: 1 });

    const result = await waitFor('the page result', 15_000,
      async () => (await page.evaluate(() => window.ternResult?.ok !== undefined ? window.ternResult : undefined)));
    if (screenshot) {
      await page.screenshot({ path: screenshot, fullPage: true });
      console.log(`screenshot: ${screenshot}`);
    }
    if (!result.ok) {
      fail(`page: ${result.detail}`);
    }
    if (result.echo !== 'hello from the browser' || result.fromNode !== 'hello from node over tcp') {
      fail(`unexpected messages: ${JSON.stringify(result)}`);
    }
    if (!/client 'browser-\d+' connected \(MQTT 5, .*wss/.test(tern.log())) {
      fail(`tern did not log the browser's wss connection:\n${tern.log()}`);
    }
    console.log(`PASS: ${result.detail} (${await page.evaluate(() => navigator.userAgent)})`);
  } catch (err) {
    console.error(consoleLines.join('\n'));
    console.error(`tern log:\n${tern.log()}`);
    throw err;
  }
}

await runTest(main, overallTimeoutMs);
