import { DualBrokerError } from '../errors.js'

/** The append was not stored because the store is full (`overflow: 'reject-new'`) or the message can never fit. */
export class StoreFullError extends DualBrokerError {
  override name = 'StoreFullError'
  constructor (message: string) {
    super('DUALBROKER_ERR_STORE_FULL', message)
  }
}

/** The store is not open (never opened, or closed). */
export class StoreClosedError extends DualBrokerError {
  override name = 'StoreClosedError'
  /** `where` says which store: `at <path>`, or `in memory`. */
  constructor (where: string) {
    super('DUALBROKER_ERR_STORE_CLOSED', `pending store ${where} is not open`)
  }
}

/** A store constructor given options it cannot use; thrown at construction, before anything is opened. */
export function optionsError (message: string): DualBrokerError {
  return new DualBrokerError('DUALBROKER_ERR_STORE_OPTIONS', `pending store: ${message}`)
}

/** A message the store cannot hold as given (the append rejects with it). */
export function messageError (message: string): DualBrokerError {
  return new DualBrokerError('DUALBROKER_ERR_STORE_MESSAGE', `pending store: ${message}`)
}

/** `open()` called on a store that was opened before (the tier opens the store it is given itself). */
export function openedTwiceError (where: string, state: string): DualBrokerError {
  return new DualBrokerError('DUALBROKER_ERR_STORE_OPEN', `pending store ${where} cannot be opened twice (state: ${state})`)
}

/** An entry on disk the store cannot read. */
export function entryError (message: string): DualBrokerError {
  return new DualBrokerError('DUALBROKER_ERR_STORE_OPEN', message)
}
