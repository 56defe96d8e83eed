// Real Chromium (Debian's, via playwright-core) for the approval-page e2e files.
// CI (AIRLOCK_E2E=require) installs it; elsewhere a missing browser skips the
// file, saying so. It trusts exactly the local stack's key (pinned by SPKI
// hash), not "any certificate".
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import type { TestStack } from './stack.ts';

export const CHROMIUM = process.env.AIRLOCK_CHROMIUM ?? '/usr/bin/chromium';

/** True (and said on the console) when this file's browser tests must be skipped. */
export function chromiumMissing(what: string): boolean {
  const missing = !existsSync(CHROMIUM) && process.env.AIRLOCK_E2E !== 'require';
  if (missing) console.log(`${what} skipped: no Chromium at ${CHROMIUM} (apt install chromium)`);
  return missing;
}

export function launchChromium(env: TestStack): Promise<Browser> {
  const spki = createHash('sha256')
    .update(new X509Certificate(readFileSync(`${env.stack.home}/server.crt`)).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--ignore-certificate-errors-spki-list=${spki}`,
    ],
  });
}
