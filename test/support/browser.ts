// A real Chromium (Debian's, through playwright-core) that trusts exactly the
// local stack's serving key (pinned by SPKI hash), not "any certificate".
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.AIRLOCK_CHROMIUM ?? '/usr/bin/chromium';

/** CI (AIRLOCK_E2E=require) installs Debian's chromium; elsewhere a missing browser skips the file, saying so. */
export function chromiumMissing(what: string): boolean {
  const missing = !existsSync(CHROMIUM) && process.env.AIRLOCK_E2E !== 'require';
  if (missing) console.log(`${what} skipped: no Chromium at ${CHROMIUM} (apt install chromium)`);
  return missing;
}

export function launchChromium(stackHome: string): Promise<Browser> {
  const spki = createHash('sha256')
    .update(new X509Certificate(readFileSync(join(stackHome, 'server.crt'))).publicKey.export({ type: 'spki', format: 'der' }))
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
