import QRCode from 'qrcode';

/** A JWS up to this long fits one version-22 QR at error correction L (https://spec.smarthealth.cards/#chunking-larger-shcs-deprecated). */
const MAX_SINGLE_JWS = 1195;
const MAX_CHUNK = 1191;

export interface HealthCardQr {
  /** The QR's content: `shc:/` (or `shc:/i/n/` for chunk i of n) and the numeric-encoded JWS part. */
  numeric: string;
  /** The QR code as a PNG image. */
  png: Buffer;
}

/**
 * The QR codes of a card (https://spec.smarthealth.cards/#encoding-qrs): one, or for a JWS
 * longer than 1195 characters chunks of balanced length (the spec's advice: a 1200
 * character JWS becomes two of ~600, not 1191 + 9). Each QR has two segments, the
 * `shc:/…` prefix in byte mode and the digits in numeric mode, which packs ~20% more
 * than byte mode; error correction L keeps the QR within version 22 (scannable at 40 mm).
 */
export async function healthCardQrs(jws: string): Promise<HealthCardQr[]> {
  const count = jws.length > MAX_SINGLE_JWS ? Math.ceil(jws.length / MAX_CHUNK) : 1;
  const size = Math.ceil(jws.length / count);
  const parts = Array.from({ length: count }, (_, i) => jws.slice(i * size, (i + 1) * size));
  return Promise.all(
    parts.map(async (part, i) => {
      const prefix = count === 1 ? 'shc:/' : `shc:/${i + 1}/${count}/`;
      const digits = numericEncoding(part);
      const png = await QRCode.toBuffer(
        [
          { data: Buffer.from(prefix, 'ascii'), mode: 'byte' },
          { data: digits, mode: 'numeric' },
        ],
        { type: 'png', errorCorrectionLevel: 'L' }
      );
      return { numeric: `${prefix}${digits}`, png };
    })
  );
}

/** Each character as two digits of its code minus 45 ('-', the lowest a compact JWS holds). */
export function numericEncoding(jws: string): string {
  let digits = '';
  for (let i = 0; i < jws.length; i++) {
    const value = jws.charCodeAt(i) - 45;
    if (value < 0 || value > 99) throw new Error(`Not a compact JWS character: ${jws[i]}`);
    digits += value.toString().padStart(2, '0');
  }
  return digits;
}
