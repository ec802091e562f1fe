/** A configuration that cannot be used; `problems` has one line per problem, each naming its key. */
export class ConfigError extends Error {
  readonly problems: string[]
  constructor (problems: string[]) {
    super(problems.join('\n'))
    this.name = 'ConfigError'
    this.problems = problems
  }
}
