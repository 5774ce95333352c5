// The flag service refuses (422 naming expires_in) a token that would outlive the expiring token
// creating it. GET /api/v1/me says when the signed-in token expires, so the token form can offer
// only what will be accepted instead of letting people guess.

const HOUR = 3_600_000;
const MINUTE = 60_000;

/** The longest expires_in the signed-in token may ask for. */
export interface ExpiryLimit {
  /** When the signed-in token expires (RFC 3339, as /me sent it). */
  expiresAt: string;
  /** Milliseconds left until then. */
  leftMs: number;
  /**
   * A Go duration no longer than what is left, rounded down to whole hours (whole minutes under
   * an hour) so that it is still allowed when the request arrives; null under a minute.
   */
  longest: string | null;
}

/** The limit for a token expiring at expiresAt; null when it never expires (or /me did not say). */
export function expiryLimit(expiresAt: string | null | undefined, now = Date.now()): ExpiryLimit | null {
  if (!expiresAt) return null;
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return null;
  const leftMs = Math.max(0, at - now);
  const longest = leftMs >= HOUR ? `${Math.floor(leftMs / HOUR)}h` : leftMs >= MINUTE ? `${Math.floor(leftMs / MINUTE)}m` : null;
  return { expiresAt, leftMs, longest };
}

/** The form's suggested expires_in: `wanted`, capped to the limit ('' when nothing is left). */
export function cappedExpiresIn(wanted: string, wantedMs: number, limit: ExpiryLimit | null): string {
  if (!limit) return wanted;
  if (wantedMs <= limit.leftMs) return wanted;
  return limit.longest ?? '';
}
