/**
 * Explicit states for the SIP layer's transactions and dialogs: each keeps a table of the
 * moves RFC 3261 allows and changes state only through `move`, which throws on any other.
 */

export class IllegalSipTransition extends Error {
  constructor(what: string, from: string, to: string) {
    super(`${what} cannot move from ${from} to ${to}`);
    this.name = 'IllegalSipTransition';
  }
}

export type Moves<S extends string> = Readonly<Record<S, readonly S[]>>;

/** Returns `to` when the table allows `from → to`; throws otherwise. */
export function move<S extends string>(moves: Moves<S>, what: string, from: S, to: S): S {
  if (!moves[from].includes(to)) throw new IllegalSipTransition(what, from, to);
  return to;
}
