// A QR code drawn as SVG elements (never parsed from markup), for enrolling an authenticator app: the
// otpauth URI becomes modules of the well-kept qrcode-generator package, each dark one a square of one path.

import qrcode from 'qrcode-generator';

const SVG = 'http://www.w3.org/2000/svg';
const QUIET = 4; // modules of light margin around the code, as the standard asks

/**
 * Draw `text` as a QR code inside `host` (its children are replaced).
 * @param {Element} host
 * @param {string} text
 * @param {string} label what the code holds, for people who cannot see it
 */
export function drawQr(host, text, label) {
  const code = qrcode(0, 'M');
  code.addData(text);
  code.make();
  const count = code.getModuleCount();
  const size = count + 2 * QUIET;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('shape-rendering', 'crispEdges');
  const light = document.createElementNS(SVG, 'rect');
  light.setAttribute('width', String(size));
  light.setAttribute('height', String(size));
  light.setAttribute('fill', '#fff');
  const dark = document.createElementNS(SVG, 'path');
  const squares = [];
  for (let row = 0; row < count; row += 1) {
    for (let col = 0; col < count; col += 1) {
      if (code.isDark(row, col)) squares.push(`M${col + QUIET} ${row + QUIET}h1v1h-1z`);
    }
  }
  dark.setAttribute('d', squares.join(''));
  dark.setAttribute('fill', '#000');
  svg.append(light, dark);
  host.replaceChildren(svg);
}

/**
 * Show an authenticator's secret three ways: a QR code to scan, the key to type, a link for this phone.
 * The elements are `${prefix}-qr`, `${prefix}-secret` and `${prefix}-link`.
 * @param {string} prefix
 * @param {string} secret base32, as the server gave it
 * @param {string} uri the otpauth URI
 * @param {(secret: string) => string} group how the key is shown for typing
 */
export function showAuthenticator(prefix, secret, uri, group) {
  const qr = document.getElementById(`${prefix}-qr`);
  if (qr) drawQr(qr, uri, 'QR code of your authenticator setup key: scan it with the app');
  const key = document.getElementById(`${prefix}-secret`);
  if (key) key.textContent = group(secret);
  const link = document.getElementById(`${prefix}-link`);
  if (link instanceof HTMLAnchorElement) link.href = uri;
}
