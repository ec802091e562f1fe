import { DualBrokerError } from '../errors.js'
import { capProblems } from './bounds.js'

/**
 * A configuration that cannot be used; `problems` has one line per problem, each naming its key:
 * the first 20 (each cut to 300 characters), then "… and N more".
 */
export class ConfigError extends DualBrokerError {
  override name = 'ConfigError'
  readonly problems: string[]
  constructor (problems: string[]) {
    const capped = capProblems(problems)
    super('DUALBROKER_ERR_CONFIG', capped.join('\n'))
    this.problems = capped
  }
}
