import { isTree } from './tree.js'

export const SECRET_KEYS = /^(password|passphrase|token|secret)$/i
/**
 * Keys whose value is never shown in a config problem, whatever its type: the secrets, `service`
 * (credentials, a bare string may be a password) and `key` (a path, or key material pasted in).
 */
const SECRET_PATH_KEYS = /^(password|passphrase|token|secret|service|key)$/i

/** A URL with a scheme: everything between "://" and the last "@" of the run is credentials. */
const URL_CREDENTIALS = /([a-z][a-z\d+.-]*:\/\/)([^\s"'<>]*)@/gi
/** "user:password@host" without a scheme (a malformed URL is still a password). */
const BARE_CREDENTIALS = /(^|[\s"'(=])([^\s"'@:/]+):(?!\/\/)([^\s"']*)@/g
const PEM = /-----BEGIN [^-\n]*-----[\s\S]*?(-----END [^-\n]*-----|$)/g

/** `text` with URL credentials and PEM blocks masked. */
function maskText (text: string): string {
  if (!text.includes('@') && !text.includes('-----BEGIN')) return text
  return text
    .replace(URL_CREDENTIALS, (_, scheme: string, userinfo: string) => `${scheme}${maskUserinfo(userinfo)}@`)
    .replace(BARE_CREDENTIALS, (_, before: string, user: string) => `${before}${user}:***@`)
    .replace(PEM, '***')
}

function maskUserinfo (userinfo: string): string {
  const colon = userinfo.indexOf(':')
  // Without a colon the whole of it may be a token: nothing of it is kept.
  return colon < 0 ? '***' : `${userinfo.slice(0, colon)}:***`
}

/** Whether a config problem at `path` must not show its value. */
export function isSecretPath (path: readonly PropertyKey[]): boolean {
  return path.some((step) => typeof step === 'string' && SECRET_PATH_KEYS.test(step))
}

/** A deep copy safe to print or log: secret values, passwords inside URLs and PEM blocks become "***". */
export function maskSecrets<T> (value: T): T {
  if (Array.isArray(value)) return value.map(maskSecrets) as T
  if (isTree(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, v]) =>
      [key, SECRET_KEYS.test(key) && v !== undefined ? '***' : maskSecrets(v)])) as T
  }
  if (typeof value === 'string') return maskText(value) as T
  return value
}

/**
 * `text` (e.g. an error message) with every secret of `config` replaced by "***". Secrets shorter
 * than 4 characters are left alone: replacing them would garble the text and they protect nothing.
 */
export function redactText (text: string, config: unknown): string {
  const secrets: string[] = []
  const collect = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(collect)
    else if (isTree(value)) {
      for (const [key, v] of Object.entries(value)) {
        if (SECRET_KEYS.test(key) && typeof v === 'string' && v.length >= 4) secrets.push(v)
        // Key material given where a file path belongs ends up in "cannot open" messages.
        else if (typeof v === 'string' && v.includes('-----BEGIN')) secrets.push(v)
        else collect(v)
      }
    }
  }
  collect(config)
  return secrets.reduce((out, secret) => out.split(secret).join('***'), maskSecrets(text))
}
