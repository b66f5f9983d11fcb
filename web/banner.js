// banner.js: the red banner every signed-in page shows while uploads are not being scanned for
// malware (GET /api/v1/me "scan": "disabled" on a development server without signatures, "down"
// when no scanner answers). Shown above the page's header; gone once the server scans again.

import { api } from './api.js';
import { el } from './ui.js';

const TEXT = {
  disabled: 'Uploads are NOT being scanned for malware: this server has no virus signatures (development mode). ' +
    'Files uploaded now are scanned once signatures are installed.',
  down: 'The virus scanner is not answering: uploads fail until it is back.',
};

// scanBanner(me): shows, updates or removes the banner from the /me answer (fetched when me is
// another answer, such as the login's, that does not say).
export async function scanBanner(me) {
  if (!me || me.scan === undefined) {
    try { me = await api('GET', '/api/v1/me'); } catch { return; }
  }
  const old = document.querySelector('[data-testid="scan-banner"]');
  const text = me && TEXT[me.scan];
  if (!text) {
    if (old) old.remove();
    return;
  }
  const b = el('div', { class: 'scan-banner', role: 'alert', 'data-testid': 'scan-banner', dataset: { scan: me.scan } }, text);
  if (old) old.replaceWith(b);
  else document.body.prepend(b);
}
