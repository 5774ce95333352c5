import { describe, expect, it } from 'vitest';
import { cappedExpiresIn, expiryLimit } from './tokenExpiry';

const now = Date.parse('2026-11-26T12:00:00Z');
const H = 3_600_000;

describe('expiryLimit', () => {
  it.each([
    ['never expires', null, null],
    ['unparseable', 'soon', null],
  ])('%s: no limit', (_, at, want) => {
    expect(expiryLimit(at, now)).toBe(want);
  });

  it.each([
    ['41.5 h left: whole hours, rounded down', '2026-11-28T05:30:00Z', '41h'],
    ['exactly 2 h left', '2026-11-26T14:00:00Z', '2h'],
    ['59.9 min left: whole minutes', '2026-11-26T12:59:54Z', '59m'],
    ['30 s left: nothing', '2026-11-26T12:00:30Z', null],
    ['already expired: nothing', '2026-11-26T11:00:00Z', null],
  ])('%s', (_, at, longest) => {
    expect(expiryLimit(at, now)?.longest).toBe(longest);
  });
});

describe('cappedExpiresIn', () => {
  const limit = expiryLimit('2026-11-28T05:30:00Z', now);
  it('keeps the suggestion when the token never expires', () => expect(cappedExpiresIn('720h', 720 * H, null)).toBe('720h'));
  it('caps it to the longest allowed', () => expect(cappedExpiresIn('720h', 720 * H, limit)).toBe('41h'));
  it('keeps a shorter one', () => expect(cappedExpiresIn('8h', 8 * H, limit)).toBe('8h'));
  it('is empty when nothing is left', () => expect(cappedExpiresIn('720h', 720 * H, expiryLimit('2026-11-26T12:00:10Z', now))).toBe(''));
});
