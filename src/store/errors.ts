/** The append was not stored because the store is full (`overflow: 'reject-new'`) or the message can never fit. */
export class StoreFullError extends Error {
  override readonly name = 'StoreFullError'
  readonly code = 'STORE_FULL'
  constructor (message: string) {
    super(message)
  }
}

/** The store is not open (never opened, or closed). */
export class StoreClosedError extends Error {
  override readonly name = 'StoreClosedError'
  readonly code = 'STORE_CLOSED'
  constructor (path: string) {
    super(`pending store at ${path} is not open`)
  }
}
