import { isTree } from './tree.js'

export const SECRET_KEYS = /^(password|passphrase|token|secret)$/i

/** A deep copy safe to print or log: secret values and passwords inside URLs become "***". */
export function maskSecrets<T> (value: T): T {
  if (Array.isArray(value)) return value.map(maskSecrets) as T
  if (isTree(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, v]) =>
      [key, SECRET_KEYS.test(key) && v !== undefined ? '***' : maskSecrets(v)])) as T
  }
  if (typeof value === 'string') return value.replace(/([a-z][a-z\d+.-]*:\/\/[^:/@\s]*:)[^/@\s]+@/gi, '$1***@') as T
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
        else collect(v)
      }
    }
  }
  collect(config)
  return secrets.reduce((out, secret) => out.split(secret).join('***'), maskSecrets(text))
}

