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
  constructor (path: string) {
    super('DUALBROKER_ERR_STORE_CLOSED', `pending store at ${path} is not open`)
  }
}
