import { capProblems } from './bounds.js'

/**
 * A configuration that cannot be used; `problems` has one line per problem, each naming its key:
 * the first 20 (each cut to 300 characters), then "… and N more".
 */
export class ConfigError extends Error {
  readonly problems: string[]
  constructor (problems: string[]) {
    const capped = capProblems(problems)
    super(capped.join('\n'))
    this.name = 'ConfigError'
    this.problems = capped
  }
}
