/** The structured logger the stores write to (a pino logger fits). Credentials never reach it. */
export interface StoreLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
}
