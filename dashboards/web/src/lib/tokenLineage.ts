import type { APIToken } from './types';

// madeWith lists the live tokens created with token id, directly or through others (each token
// names the one it was created with): what revoking it with cascade revokes too.
export function madeWith(tokens: APIToken[], id: string): APIToken[] {
  const out: APIToken[] = [];
  const seen = new Set([id]);
  for (let makers = [id]; makers.length > 0;) {
    const next = tokens.filter((t) => t.created_by_token !== undefined && makers.includes(t.created_by_token) && !seen.has(t.id));
    next.forEach((t) => seen.add(t.id));
    out.push(...next.filter((t) => !t.revoked_at));
    makers = next.map((t) => t.id);
  }
  return out;
}
