// Verifies a compact JWS of huren with npm jose, independently of huren and
// OpenSSL's command line: the leaf certificate of "x5c" is imported with
// importX509 and the signature checked with compactVerify (ES256, EdDSA).
// The certificate chain is not jose's business (openssl and huren verify
// check it). Usage: node verify_jws.mjs FILE.jws ; exit 0 verified, 1 not.
import { readFileSync } from 'node:fs';
import { compactVerify, decodeProtectedHeader, importX509 } from 'jose';

const file = process.argv[2];
try {
  const jws = readFileSync(file, 'utf8').trim();
  const hdr = decodeProtectedHeader(jws);
  if (hdr.alg !== 'ES256' && hdr.alg !== 'EdDSA') throw new Error(`alg ${hdr.alg} is not ES256 or EdDSA`);
  if (!Array.isArray(hdr.x5c) || hdr.x5c.length < 1) throw new Error('no x5c');
  const pem = `-----BEGIN CERTIFICATE-----\n${hdr.x5c[0].match(/.{1,64}/g).join('\n')}\n-----END CERTIFICATE-----\n`;
  const key = await importX509(pem, hdr.alg);
  const { payload, protectedHeader } = await compactVerify(jws, key, { algorithms: [hdr.alg] });
  const doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  console.log(`jose: ${protectedHeader.alg} signature ok, report ${doc.report?.id} v${doc.report?.version}`);
  process.exit(0);
} catch (e) {
  console.log(`jose: FAIL ${file}: ${e.code ?? ''} ${e.message}`);
  process.exit(1);
}
