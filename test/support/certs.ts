import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { tempDir } from './durable.js'

export interface Certificates {
  dir: string
  ca: string
  serverKey: string
  serverCert: string
  clientKey: string
  clientCert: string
  /** A CA that signed none of the above. */
  otherCa: string
}

function openssl (dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
}

/** A throwaway PKI made with the openssl binary: a CA, a server certificate for 127.0.0.1, a client certificate. */
export function makeCertificates (t: Test): Certificates {
  const dir = tempDir(t, 'certs-')
  const selfSigned = (name: string): void => openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
    '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.crt`)
  selfSigned('ca')
  selfSigned('other-ca')
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  for (const name of ['server', 'client']) {
    openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`)
    openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
      ...(name === 'server' ? ['-extfile', 'server.ext'] : []), '-out', `${name}.crt`)
  }
  const at = (file: string): string => join(dir, file)
  return {
    dir, ca: at('ca.crt'), serverKey: at('server.key'), serverCert: at('server.crt'),
    clientKey: at('client.key'), clientCert: at('client.crt'), otherCa: at('other-ca.crt')
  }
}
