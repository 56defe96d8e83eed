// Certificates for loopback servers (the local stack and the test cluster).
// Generated with @peculiar/x509 over Node's WebCrypto: ECDSA P-256, a CA
// that signs leaf certificates for 127.0.0.1 / localhost only.
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export interface CertificateAuthority extends PemPair {
  issue(options: LeafOptions): Promise<PemPair>;
}

export interface LeafOptions {
  commonName: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  /** serverAuth (default) or clientAuth */
  usage?: 'server' | 'client';
  /** Subject organization, e.g. a Kubernetes group for client certs. */
  organization?: string;
  validDays?: number;
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

async function importKeyPem(pem: string): Promise<webcrypto.CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new Error('no private key in PEM');
  return await webcrypto.subtle.importKey('pkcs8', der, ecdsa, true, ['sign']);
}

function escapeDn(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1');
}

export async function createCertificateAuthority(commonName: string, validDays = 3650): Promise<CertificateAuthority> {
  const keys = await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${escapeDn(commonName)}`,
    keys,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + validDays * DAY_MS),
    signingAlgorithm: ecdsa,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return loadCertificateAuthority({ certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) });
}

export async function loadCertificateAuthority(pair: PemPair): Promise<CertificateAuthority> {
  const caCert = new x509.X509Certificate(pair.certPem);
  const caKey = await importKeyPem(pair.keyPem);
  return {
    ...pair,
    async issue(options: LeafOptions): Promise<PemPair> {
      const keys = await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']);
      const now = Date.now();
      const names: x509.JsonGeneralName[] = [
        ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
        ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
      ];
      const subject = [`CN=${escapeDn(options.commonName)}`];
      if (options.organization) subject.unshift(`O=${escapeDn(options.organization)}`);
      const extensions: x509.Extension[] = [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([options.usage === 'client' ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth], false),
        await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
      ];
      if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
      const cert = await x509.X509CertificateGenerator.create({
        subject: subject.join(', '),
        issuer: caCert.subject,
        publicKey: keys.publicKey,
        signingKey: caKey,
        notBefore: new Date(now - DAY_MS),
        notAfter: new Date(now + (options.validDays ?? 825) * DAY_MS),
        signingAlgorithm: ecdsa,
        extensions,
      });
      return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
    },
  };
}
