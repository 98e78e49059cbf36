import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's headless Chromium (`apt-get install chromium`; .ci/run installs
 * it), as every browser test and `npm run screenshots` drive it: no
 * sandbox (containers), nothing fetched from the network by itself.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
