import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { fireEvent, render } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Router } from 'wouter';
import { memoryLocation } from 'wouter/memory-location';
import { fakeApi } from '../test/fakeApi';
import { Layout } from './Layout';

/** Renders the layout at `path` and returns the location it navigates to. */
function renderAt(path: string) {
  fakeApi({ 'GET /api/v1/projects': { items: [{ key: 'shop', name: 'Shop', environments: [] }] } });
  const loc = memoryLocation({ path, record: true });
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={qc}>
      <Router hook={loc.hook}>
        <Layout>page</Layout>
      </Router>
    </QueryClientProvider>,
  );
  return loc;
}

function keys(...ks: string[]) {
  for (const key of ks) fireEvent.keyDown(window, { key });
}

describe('keyboard shortcuts', () => {
  afterEach(() => vi.unstubAllGlobals());

  // README: `g` then `e f m g s k a u` goes to a section.
  it.each([
    ['e', '/p/shop/experiments'],
    ['f', '/p/shop/flags'],
    ['m', '/p/shop/metrics'],
    ['g', '/p/shop/guardrails'],
    ['s', '/p/shop/stale'],
    ['k', '/p/shop/environments'],
    ['a', '/audit'],
    ['u', '/members'],
  ])('g then %s goes to %s', (key, to) => {
    const loc = renderAt('/p/shop/flags/new-checkout');
    keys('g', key);
    expect(loc.history.at(-1)).toBe(to);
  });

  it('a letter without g first goes nowhere', () => {
    const loc = renderAt('/p/shop/flags');
    keys('e');
    expect(loc.history).toEqual(['/p/shop/flags']);
  });
});
