/**
 * A real browser for the dashboard tests: the system's Chromium driven by playwright-core, never a
 * downloaded one. If it cannot start, the tests fail and say why.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { tempDir } from './processes.js';

export const CHROMIUM = process.env.FLEETD_TEST_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = join(import.meta.dirname, '../../test-results/dashboard');

// Without these Chromium reaches out to Google services (which fail offline); as root it needs --no-sandbox.
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchBrowser(): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: install it (Debian: apt-get install chromium) or set FLEETD_TEST_CHROMIUM`,
    );
  }
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launchPersistentContext(tempDir('fleetd-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1366, height: 900 },
    locale: 'en-US',
    timezoneId: 'America/New_York',
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  // From the top, so the sticky navigation bar is where a person sees it.
  await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}
