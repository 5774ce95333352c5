import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { Link, useLocation } from 'wouter';
import { clearToken } from '../lib/session';
import { useMe, useProjects } from '../lib/queries';
import { Modal } from './ui';

const projectSections = [
  { path: 'experiments', label: 'Experiments', key: 'e' },
  { path: 'flags', label: 'Flags', key: 'f' },
  { path: 'metrics', label: 'Metrics', key: 'm' },
  { path: 'guardrails', label: 'Guardrails', key: 'g' },
  { path: 'stale', label: 'Stale flags', key: 's' },
  { path: 'environments', label: 'Environments & keys', key: 'k' },
];

const orgSections = [
  { path: '/audit', label: 'Audit log', key: 'a' },
  { path: '/members', label: 'Members', key: 'u' },
];

function isTyping(el: Element | null): boolean {
  if (!el) return false;
  const tag = el.tagName;
  return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || (el as HTMLElement).isContentEditable;
}

/** Shortcuts: "/" focuses the page's search, "g" then a letter goes to a section, "?" lists them. */
function useShortcuts(project: string | null, navigate: (to: string) => void, openHelp: () => void) {
  const pendingG = useRef(0);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.metaKey || e.ctrlKey || e.altKey || isTyping(document.activeElement) || document.querySelector('[role="dialog"]')) return;
      if (e.key === '/') {
        const search = document.querySelector<HTMLInputElement>('[data-search]');
        if (search) {
          e.preventDefault();
          search.focus();
          search.select();
        }
        return;
      }
      if (e.key === '?') {
        e.preventDefault();
        openHelp();
        return;
      }
      // A "g" right after a "g" is the second key of a shortcut ("g g": Guardrails), not a new start.
      const pending = Date.now() - pendingG.current < 1200;
      if (e.key === 'g' && !pending) {
        pendingG.current = Date.now();
        return;
      }
      if (pending) {
        pendingG.current = 0;
        const section = projectSections.find((s) => s.key === e.key);
        if (section && project) navigate(`/p/${project}/${section.path}`);
        const org = orgSections.find((s) => s.key === e.key);
        if (org) navigate(org.path);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [project, navigate, openHelp]);
}

export function Layout({ children }: { children: ReactNode }) {
  const [location, navigate] = useLocation();
  const projects = useProjects();
  const me = useMe();
  const qc = useQueryClient();
  const [help, setHelp] = useState(false);
  const match = location.match(/^\/p\/([^/]+)(?:\/([^/]+))?/);
  const project = match ? decodeURIComponent(match[1]) : sessionStorage.getItem('switchyard.project');
  const section = match?.[2] ?? '';
  useEffect(() => {
    if (match) sessionStorage.setItem('switchyard.project', decodeURIComponent(match[1]));
  }, [match?.[1]]); // eslint-disable-line react-hooks/exhaustive-deps
  useShortcuts(project, navigate, () => setHelp(true));

  return (
    <div className="min-h-screen">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:px-3 focus:py-2">
        Skip to content
      </a>
      <header className="border-b border-slate-200 bg-white">
        <div className="mx-auto flex max-w-[96rem] flex-wrap items-center gap-x-4 gap-y-2 px-4 py-2">
          <Link href="/" className="flex items-center gap-2 font-semibold text-slate-900">
            <img src="/favicon.svg" alt="" width={22} height={22} />
            Switchyard
          </Link>
          <label className="flex items-center gap-1.5 text-sm text-slate-700">
            <span>Project</span>
            <select
              className="rounded-md border border-slate-300 bg-white px-2 py-1 text-sm"
              value={project ?? ''}
              onChange={(e) => navigate(`/p/${e.target.value}/${section || 'experiments'}`)}
            >
              {!project && <option value="">Choose…</option>}
              {(projects.data ?? []).map((p) => (
                <option key={p.key} value={p.key}>{p.name || p.key}</option>
              ))}
            </select>
          </label>
          <nav aria-label="Main" className="flex flex-wrap items-center gap-1">
            {project &&
              projectSections.map((s) => {
                const href = `/p/${project}/${s.path}`;
                const active = section === s.path;
                return (
                  <Link key={s.path} href={href} aria-current={active ? 'page' : undefined}
                    className={`rounded-md px-2 py-1 text-sm ${active ? 'bg-blue-100 font-semibold text-blue-900' : 'text-slate-700 hover:bg-slate-100'}`}>
                    {s.label}
                  </Link>
                );
              })}
            {orgSections.map((s) => (
              <Link key={s.path} href={s.path} aria-current={location === s.path ? 'page' : undefined}
                className={`rounded-md px-2 py-1 text-sm ${location === s.path ? 'bg-blue-100 font-semibold text-blue-900' : 'text-slate-700 hover:bg-slate-100'}`}>
                {s.label}
              </Link>
            ))}
          </nav>
          <div className="ml-auto flex items-center gap-3 text-sm text-slate-700">
            <button type="button" className="rounded px-1 text-slate-600 hover:text-slate-900" onClick={() => setHelp(true)} aria-label="Keyboard shortcuts">?</button>
            {me.data && <span title={me.data.organization.name}>{me.data.actor.name} · {me.data.role.replace('_', ' ')}</span>}
            <button
              type="button"
              className="rounded-md border border-slate-300 px-2 py-1 hover:bg-slate-50"
              onClick={() => {
                clearToken();
                qc.clear();
                navigate('/');
              }}
            >
              Sign out
            </button>
          </div>
        </div>
      </header>
      <main id="main" tabIndex={-1} className="mx-auto max-w-7xl px-4 py-5">
        {children}
      </main>
      <Modal open={help} onClose={() => setHelp(false)} title="Keyboard shortcuts">
        <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm">
          <dt><kbd className="rounded border px-1">/</kbd></dt><dd>Search on this page</dd>
          {projectSections.map((s) => (
            <div key={s.key} className="contents">
              <dt><kbd className="rounded border px-1">g</kbd> <kbd className="rounded border px-1">{s.key}</kbd></dt>
              <dd>{s.label}</dd>
            </div>
          ))}
          {orgSections.map((s) => (
            <div key={s.key} className="contents">
              <dt><kbd className="rounded border px-1">g</kbd> <kbd className="rounded border px-1">{s.key}</kbd></dt>
              <dd>{s.label}</dd>
            </div>
          ))}
          <dt><kbd className="rounded border px-1">?</kbd></dt><dd>This list</dd>
        </dl>
      </Modal>
    </div>
  );
}
