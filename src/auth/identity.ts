/** Who is calling: a client key, the admin key, or anybody (authentication turned off). */
export type Identity =
  | { kind: 'client'; keyId: string }
  | { kind: 'admin'; keyId: 'admin' }
  | { kind: 'anonymous' }
  /** No key, on a public route (health, metrics) while authentication is on: sees no sessions. */
  | { kind: 'guest' };

/** What a caller may see of sessions: its own (`owner`), or all of them. */
export interface SessionScope {
  /** Owner recorded on sessions this caller creates; null when authentication is off. */
  owner: string | null;
  /** Sees every session (admin, or authentication off). */
  all: boolean;
}

export function scopeOf(identity: Identity): SessionScope {
  switch (identity.kind) {
    case 'client':
      return { owner: identity.keyId, all: false };
    case 'admin':
      return { owner: 'admin', all: true };
    case 'anonymous':
      return { owner: null, all: true };
    case 'guest':
      return { owner: '', all: false };
  }
}

/** The admin key, or anybody while authentication is off. */
export function isAdmin(identity: Identity): boolean {
  return identity.kind === 'admin' || identity.kind === 'anonymous';
}
