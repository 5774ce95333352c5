import { lazy, Suspense, useSyncExternalStore } from 'react';
import { Redirect, Route, Switch } from 'wouter';
import { Layout } from './components/Layout';
import { ErrorBanner, Spinner } from './components/ui';
import { getToken, onTokenChange } from './lib/session';
import { useProjects } from './lib/queries';
import SignIn from './pages/SignIn';

// Every page is its own chunk: the results page loads only what it draws.
const ExperimentResults = lazy(() => import('./pages/ExperimentResults'));
const ExperimentsList = lazy(() => import('./pages/ExperimentsList'));
const FlagsList = lazy(() => import('./pages/FlagsList'));
const FlagDetail = lazy(() => import('./pages/FlagDetail'));
const Metrics = lazy(() => import('./pages/Metrics'));
const Guardrails = lazy(() => import('./pages/Guardrails'));
const StaleFlags = lazy(() => import('./pages/StaleFlags'));
const Audit = lazy(() => import('./pages/Audit'));
const Environments = lazy(() => import('./pages/Environments'));
const Members = lazy(() => import('./pages/Members'));

export function App() {
  const token = useSyncExternalStore(onTokenChange, getToken);
  if (!token) return <SignIn />;
  return (
    <Layout>
      <Suspense fallback={<Spinner label="Loading page" />}>
        <Switch>
          <Route path="/">{() => <Home />}</Route>
          <Route path="/p/:project/experiments">{(p) => <ExperimentsList project={p.project} />}</Route>
          <Route path="/p/:project/experiments/:key">{(p) => <ExperimentResults key={`${p.project}/${p.key}`} project={p.project} experimentKey={p.key} />}</Route>
          <Route path="/p/:project/flags">{(p) => <FlagsList project={p.project} />}</Route>
          <Route path="/p/:project/flags/:key">{(p) => <FlagDetail key={`${p.project}/${p.key}`} project={p.project} flagKey={p.key} />}</Route>
          <Route path="/p/:project/metrics">{(p) => <Metrics project={p.project} />}</Route>
          <Route path="/p/:project/guardrails">{(p) => <Guardrails project={p.project} />}</Route>
          <Route path="/p/:project/stale">{(p) => <StaleFlags project={p.project} />}</Route>
          <Route path="/p/:project/environments">{(p) => <Environments project={p.project} />}</Route>
          <Route path="/p/:project">{(p) => <Redirect to={`/p/${p.project}/experiments`} replace />}</Route>
          <Route path="/audit">{() => <Audit />}</Route>
          <Route path="/members">{() => <Members />}</Route>
          <Route>
            <div role="alert" className="text-slate-800">
              <h1 className="text-xl font-semibold">Page not found</h1>
              <p>There is no page at this address.</p>
            </div>
          </Route>
        </Switch>
      </Suspense>
    </Layout>
  );
}

function Home() {
  const projects = useProjects();
  if (projects.isPending) return <Spinner label="Loading projects" />;
  if (projects.error) return <ErrorBanner error={projects.error} title="Projects could not be loaded" />;
  const remembered = sessionStorage.getItem('switchyard.project');
  const target = projects.data.find((p) => p.key === remembered) ?? projects.data.find((p) => p.key === 'demo') ?? projects.data[0];
  if (!target) return <p>No projects yet. Create one with the flag service API (POST /api/v1/projects).</p>;
  return <Redirect to={`/p/${target.key}/experiments`} replace />;
}
