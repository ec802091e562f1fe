import type { z } from 'zod'

/** Options or configuration that do not validate: one line per problem, each naming the key. */
export class OptionsError extends Error {
  constructor (readonly problems: string[]) {
    super(`invalid options:\n  ${problems.join('\n  ')}`)
    this.name = 'OptionsError'
  }
}

export function formatProblems (error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
}
