import { describe, expect, it } from 'vitest';
import { madeWith } from './tokenLineage';
import type { APIToken } from './types';

const tok = (id: string, by?: string, revoked = false): APIToken =>
  ({ id, token_id: id, kind: 'service', name: id, created_at: '', created_by_token: by, ...(revoked ? { revoked_at: '2026-01-01T00:00:00Z' } : {}) });

describe('madeWith', () => {
  it('follows the line down through every generation, live tokens only, and nothing else', () => {
    const tokens = [tok('root'), tok('a', 'root'), tok('b', 'root', true), tok('a1', 'a'), tok('b1', 'b'), tok('other'), tok('o1', 'other')];
    expect(madeWith(tokens, 'root').map((t) => t.id)).toEqual(['a', 'a1', 'b1']);
    expect(madeWith(tokens, 'a1')).toEqual([]);
  });
});
