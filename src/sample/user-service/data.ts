/**
 * The sample service's demo data: a few companies and their users. Every demo user's password is
 * `demo`; this is a sample, not an identity provider.
 */
export interface DemoUser {
  readonly id: string;
  readonly username: string;
  readonly name: string;
  readonly companyId: string;
}

export const DEMO_PASSWORD = 'demo';

export const DEMO_USERS: readonly DemoUser[] = Object.freeze([
  { id: 'u-1', username: 'alice@acme.example', name: 'Alice Adams', companyId: 'acme' },
  { id: 'u-2', username: 'bob@acme.example', name: 'Bob Brown', companyId: 'acme' },
  { id: 'u-3', username: 'carol@globex.example', name: 'Carol Chen', companyId: 'globex' },
  { id: 'u-4', username: 'dan@globex.example', name: 'Dan Diaz', companyId: 'globex' },
  { id: 'u-5', username: 'erin@trial.example', name: 'Erin Evans', companyId: 'trial-42' },
]);

export function findUser(username: string): DemoUser | undefined {
  return DEMO_USERS.find((u) => u.username === username);
}

export function usersOf(companyId: string): readonly DemoUser[] {
  return DEMO_USERS.filter((u) => u.companyId === companyId);
}

/** `iss` of the sample's tokens (meshlimit's `resolution.jwt.issuer`). */
export const DEMO_ISSUER = 'meshlimit-sample-users';
/** `aud` of the sample's tokens (meshlimit's `resolution.jwt.audience`). */
export const DEMO_AUDIENCE = 'meshlimit-demo';
