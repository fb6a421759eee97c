// What the browser tests share: cleanups run in reverse at the end, bounded polling, temporary
// directories, a free loopback port, and starting tern on a configuration of its own.

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const cleanups = [];
export async function cleanup() {
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()();
    } catch (err) {
      console.error(`cleanup: ${err.message}`);
    }
  }
}

export function fail(message) {
  throw new Error(message);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/// Polls `check` (which returns a value or undefined) until it yields or `ms` pass.
export async function waitFor(what, ms, check) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      fail(`timed out waiting for ${what}`);
    }
    await sleep(20);
  }
}

/// A temporary directory removed at the end.
export function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/// A loopback port nobody listens on now (bound and released: another process could take it
/// before tern does, which then fails to start and says so).
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/// Starts `ternBinary --port 0 --port-file F --threads 2 -c CONF` with `lines` as CONF; waits
/// for `listeners` ports in the port file. Stops it (SIGTERM, then SIGKILL) at cleanup.
export async function startTern(ternBinary, dir, lines, listeners) {
  const conf = path.join(dir, 'tern.conf');
  const portFile = path.join(dir, 'ports');
  fs.writeFileSync(conf, lines.join('\n') + '\n');
  const logPath = path.join(dir, 'tern.log');
  const log = fs.openSync(logPath, 'a');
  const child = spawn(ternBinary, ['--port', '0', '--port-file', portFile, '--threads', '2', '-c', conf],
    { stdio: ['ignore', log, log] });
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  cleanups.push(async () => {
    if (exited === null) {
      child.kill('SIGTERM');
      await waitFor('tern to stop', 10_000, () => (exited !== null ? true : undefined))
        .catch(() => child.kill('SIGKILL'));
    }
    fs.closeSync(log);
  });
  const ports = await waitFor('the port file', 10_000, () => {
    if (exited !== null) {
      fail(`tern exited (${JSON.stringify(exited)}):\n${fs.readFileSync(logPath, 'utf8')}`);
    }
    const text = fs.existsSync(portFile) ? fs.readFileSync(portFile, 'utf8') : '';
    const found = text.split('\n').filter((l) => l !== '');
    return text.endsWith('\n') && found.length >= listeners ? found.map(Number) : undefined;
  });
  return { ports, log: () => fs.readFileSync(logPath, 'utf8') };
}

/// Headless Debian Chromium (never a downloaded browser) with a throw-away profile.
export async function launchChromium(chromium, executablePath, extraArgs = []) {
  const userDataDir = tempDir('tern-chromium-profile-');
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...extraArgs],
    timeout: 30_000,
  });
  cleanups.push(() => context.close());
  return context;
}

/// Runs `main` with an overall deadline, cleans up whatever it started, and exits 0 (passed) or
/// 1 (failed, with the reason on stderr).
export async function runTest(main, timeoutMs) {
  const timer = setTimeout(() => {
    console.error(`FAIL: no result within ${timeoutMs / 1000} s`);
    cleanup().finally(() => process.exit(1));
  }, timeoutMs);
  let code = 0;
  try {
    await main();
  } catch (err) {
    console.error(`FAIL: ${err.message}`);
    code = 1;
  } finally {
    await cleanup();
    clearTimeout(timer);
  }
  process.exit(code);
}

/// The command line and the tools every browser test needs: `node SCRIPT TERN_BINARY
/// [--screenshot FILE.png]` (or the screenshot from env `screenshotEnv`), playwright-core and
/// mqtt from node_modules, Debian's Chromium. Missing tools exit 77 (ctest's skip) for a
/// developer, but 1 under CI (CI=true), where install-deps must have put them there.
export function browserTestSetup(script, screenshotEnv) {
  const args = process.argv.slice(2);
  const ternBinary = args[0];
  const shotIndex = args.indexOf('--screenshot');
  const screenshot = shotIndex >= 0 ? args[shotIndex + 1] : process.env[screenshotEnv];
  if (!ternBinary) {
    console.error(`usage: node ${script} TERN_BINARY [--screenshot FILE.png]`);
    process.exit(2);
  }
  const skip = (why) => {
    console.log(`SKIP: ${why}`);
    process.exit(process.env.CI === 'true' ? 1 : 77);
  };
  const require = createRequire(new URL('./package.json', import.meta.url));
  let chromium;
  let mqtt;
  try {
    ({ chromium } = require('playwright-core'));
    mqtt = require('mqtt');
  } catch (err) {
    skip(`${err.message} (run: npm ci --prefix tests/browser, or tools/install-deps.sh)`);
  }
  const chromiumPath = process.env.TERN_CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(chromiumPath)) {
    skip(`no Chromium at ${chromiumPath} (apt-get install chromium)`);
  }
  return { ternBinary, screenshot, chromium, chromiumPath, mqtt, skip };
}
