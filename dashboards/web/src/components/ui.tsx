// Small styled building blocks over native elements and Headless UI (accessible dialogs and
// switches), so every page has the same labels, focus rings and error placement.

import { Dialog, DialogBackdrop, DialogPanel, DialogTitle, Switch } from '@headlessui/react';
import { useId, useState, type ReactNode, type ComponentProps } from 'react';
import { isApiError } from '../lib/api';

type ButtonVariant = 'primary' | 'secondary' | 'danger' | 'ghost';
const buttonStyles: Record<ButtonVariant, string> = {
  primary: 'bg-blue-700 text-white hover:bg-blue-800 disabled:bg-blue-300',
  secondary: 'bg-white text-slate-800 border border-slate-300 hover:bg-slate-50 disabled:text-slate-400',
  danger: 'bg-red-700 text-white hover:bg-red-800 disabled:bg-red-300',
  ghost: 'text-blue-800 hover:bg-blue-50 disabled:text-slate-400',
};

export function Button({
  variant = 'secondary',
  size = 'md',
  className = '',
  ...props
}: ComponentProps<'button'> & { variant?: ButtonVariant; size?: 'sm' | 'md' }) {
  const pad = size === 'sm' ? 'px-2 py-1 text-sm' : 'px-3 py-1.5 text-sm';
  return (
    <button
      type="button"
      className={`inline-flex items-center gap-1.5 rounded-md font-medium ${pad} ${buttonStyles[variant]} disabled:cursor-not-allowed ${className}`}
      {...props}
    />
  );
}

export type BadgeTone = 'green' | 'red' | 'amber' | 'slate' | 'blue' | 'violet';
const badgeStyles: Record<BadgeTone, string> = {
  green: 'bg-green-100 text-green-900 ring-green-700/30',
  red: 'bg-red-100 text-red-900 ring-red-700/30',
  amber: 'bg-amber-100 text-amber-950 ring-amber-700/30',
  slate: 'bg-slate-100 text-slate-800 ring-slate-600/30',
  blue: 'bg-blue-100 text-blue-900 ring-blue-700/30',
  violet: 'bg-violet-100 text-violet-900 ring-violet-700/30',
};

export function Badge({ tone = 'slate', children, title }: { tone?: BadgeTone; children: ReactNode; title?: string }) {
  return (
    <span title={title} className={`inline-flex items-center rounded px-1.5 py-0.5 text-xs font-medium ring-1 ring-inset ${badgeStyles[tone]}`}>
      {children}
    </span>
  );
}

const inputBase =
  'block w-full rounded-md border bg-white px-2.5 py-1.5 text-sm text-slate-900 placeholder:text-slate-500 disabled:bg-slate-100';

/** A labelled form field: the label, the control, a hint and the error, wired by ids. */
export function Field({
  label,
  error,
  hint,
  children,
  className = '',
}: {
  label: ReactNode;
  error?: string;
  hint?: ReactNode;
  children: (props: { id: string; 'aria-invalid'?: boolean; 'aria-describedby'?: string; className: string }) => ReactNode;
  className?: string;
}) {
  const id = useId();
  const describedBy = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div className={className}>
      <label htmlFor={id} className="mb-1 block text-sm font-medium text-slate-800">
        {label}
      </label>
      {children({
        id,
        'aria-invalid': error ? true : undefined,
        'aria-describedby': describedBy,
        className: `${inputBase} ${error ? 'border-red-600' : 'border-slate-300'}`,
      })}
      {hint && (
        <p id={`${id}-hint`} className="mt-1 text-xs text-slate-600">
          {hint}
        </p>
      )}
      {error && (
        <p id={`${id}-error`} className="mt-1 text-sm text-red-800" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

export const inputClass = `${inputBase} border-slate-300`;

export function FieldError({ id, error }: { id?: string; error?: string }) {
  if (!error) return null;
  return (
    <p id={id} className="mt-1 text-sm text-red-800" role="alert">
      {error}
    </p>
  );
}

export function Spinner({ label = 'Loading' }: { label?: string }) {
  return (
    <div role="status" className="flex items-center gap-2 py-6 text-sm text-slate-600">
      <span className="h-4 w-4 animate-spin rounded-full border-2 border-slate-300 border-t-blue-700" aria-hidden="true" />
      {label}…
    </div>
  );
}

export function ErrorBanner({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  let message = 'Something went wrong.';
  let hint: string | null = null;
  if (isApiError(error)) {
    message = error.message;
    if (error.status === 403) hint = 'Your role does not allow this. Ask an admin of your organization.';
    if (error.status === 404 && error.code === 'not_found') hint = null;
    if (error.status === 503 || error.status === 502 || error.status === 0) hint = 'A Switchyard service is unavailable; try again in a moment.';
  } else if (error instanceof Error) {
    message = error.message;
  }
  return (
    <div role="alert" className="rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-900">
      {title && <p className="font-semibold">{title}</p>}
      <p>{message}</p>
      {hint && <p className="mt-1 text-red-800">{hint}</p>}
    </div>
  );
}

export function Notice({ tone, title, children }: { tone: 'red' | 'amber' | 'blue' | 'green'; title: string; children?: ReactNode }) {
  const styles = {
    red: 'border-red-300 bg-red-50 text-red-950',
    amber: 'border-amber-300 bg-amber-50 text-amber-950',
    blue: 'border-blue-300 bg-blue-50 text-blue-950',
    green: 'border-green-300 bg-green-50 text-green-950',
  }[tone];
  return (
    <section role={tone === 'red' ? 'alert' : 'status'} aria-label={title} className={`rounded-md border p-3 text-sm ${styles}`}>
      <p className="font-semibold">{title}</p>
      {children && <div className="mt-1">{children}</div>}
    </section>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="rounded-md border border-dashed border-slate-300 bg-white p-6 text-center text-sm text-slate-600">{children}</p>;
}

export function PageHeader({ title, subtitle, actions }: { title: ReactNode; subtitle?: ReactNode; actions?: ReactNode }) {
  return (
    <div className="mb-4 flex flex-wrap items-start justify-between gap-3">
      <div>
        <h1 className="text-xl font-semibold text-slate-900">{title}</h1>
        {subtitle && <div className="mt-0.5 text-sm text-slate-600">{subtitle}</div>}
      </div>
      {actions && <div className="flex flex-wrap items-center gap-2">{actions}</div>}
    </div>
  );
}

export function Card({ title, actions, children, className = '' }: { title?: ReactNode; actions?: ReactNode; children: ReactNode; className?: string }) {
  return (
    <section className={`rounded-lg border border-slate-200 bg-white p-4 shadow-sm ${className}`}>
      {(title || actions) && (
        <div className="mb-3 flex items-center justify-between gap-2">
          {title && <h2 className="text-base font-semibold text-slate-900">{title}</h2>}
          {actions}
        </div>
      )}
      {children}
    </section>
  );
}

/** A modal dialog (Headless UI: focus trap, Escape closes, focus returns to the opener). */
export function Modal({
  open,
  onClose,
  title,
  children,
  wide = false,
}: {
  open: boolean;
  onClose: () => void;
  title: string;
  children: ReactNode;
  wide?: boolean;
}) {
  return (
    // The dialog element itself covers the viewport, so it is what assistive technology and
    // tests see as the (visible) dialog.
    <Dialog open={open} onClose={onClose} className="fixed inset-0 z-50 flex items-center justify-center p-4">
      <DialogBackdrop className="fixed inset-0 bg-slate-900/40" />
      <DialogPanel className={`relative w-full ${wide ? 'max-w-2xl' : 'max-w-md'} max-h-[90vh] overflow-y-auto rounded-lg bg-white p-5 shadow-xl`}>
        <DialogTitle className="mb-3 text-lg font-semibold text-slate-900">{title}</DialogTitle>
        {children}
      </DialogPanel>
    </Dialog>
  );
}

/** Asks before something consequential; with `typeToConfirm`, the user types a word first. */
export function ConfirmDialog({
  open,
  onClose,
  onConfirm,
  title,
  children,
  confirmLabel,
  danger = false,
  typeToConfirm,
  busy = false,
  error,
}: {
  open: boolean;
  onClose: () => void;
  onConfirm: (comment: string) => void;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  typeToConfirm?: string;
  busy?: boolean;
  error?: unknown;
}) {
  const [typed, setTyped] = useState('');
  const [comment, setComment] = useState('');
  const ok = !typeToConfirm || typed.trim() === typeToConfirm;
  return (
    <Modal open={open} onClose={onClose} title={title}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (ok && !busy) onConfirm(comment);
        }}
        className="space-y-3"
      >
        <div className="text-sm text-slate-700">{children}</div>
        <Field label="Comment (recorded in the audit log)">
          {(p) => <input {...p} value={comment} onChange={(e) => setComment(e.target.value)} />}
        </Field>
        {typeToConfirm && (
          <Field label={<>Type <code className="rounded bg-slate-100 px-1">{typeToConfirm}</code> to confirm</>}>
            {(p) => <input {...p} value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" />}
          </Field>
        )}
        <ErrorBanner error={error} />
        <div className="flex justify-end gap-2 pt-1">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant={danger ? 'danger' : 'primary'} disabled={!ok || busy}>
            {busy ? 'Working…' : confirmLabel}
          </Button>
        </div>
      </form>
    </Modal>
  );
}

export function Toggle({
  checked,
  onChange,
  label,
  disabled,
}: {
  checked: boolean;
  onChange: (v: boolean) => void;
  label: string;
  disabled?: boolean;
}) {
  return (
    <Switch
      checked={checked}
      onChange={onChange}
      disabled={disabled}
      aria-label={label}
      className={`group relative inline-flex h-6 w-11 shrink-0 items-center rounded-full transition ${
        checked ? 'bg-green-700' : 'bg-slate-400'
      } disabled:opacity-50`}
    >
      <span className={`inline-block h-4 w-4 transform rounded-full bg-white transition ${checked ? 'translate-x-6' : 'translate-x-1'}`} />
    </Switch>
  );
}

/** A segmented control (radio group) for view switches like Relative | Absolute. */
export function Segmented<T extends string>({
  label,
  value,
  options,
  onChange,
}: {
  label: string;
  value: T;
  options: { value: T; label: string }[];
  onChange: (v: T) => void;
}) {
  const name = useId();
  return (
    <fieldset className="inline-flex items-center gap-2">
      <legend className="sr-only">{label}</legend>
      <span aria-hidden="true" className="text-sm text-slate-600">
        {label}
      </span>
      <div className="inline-flex overflow-hidden rounded-md border border-slate-300 bg-white">
        {options.map((o) => (
          <label
            key={o.value}
            className={`cursor-pointer px-2.5 py-1 text-sm has-[:focus-visible]:outline-2 has-[:focus-visible]:outline-blue-700 ${
              o.value === value ? 'bg-blue-700 text-white' : 'text-slate-800 hover:bg-slate-50'
            }`}
          >
            <input type="radio" className="sr-only" name={name} value={o.value} checked={o.value === value} onChange={() => onChange(o.value)} />
            {o.label}
          </label>
        ))}
      </div>
    </fieldset>
  );
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <Button
      size="sm"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
          setCopied(true);
          setTimeout(() => setCopied(false), 1500);
        } catch {
          setCopied(false);
        }
      }}
      aria-live="polite"
    >
      {copied ? 'Copied' : label}
    </Button>
  );
}

/** A labelled filter drop-down: first an option for no filter (value ''), then the options
 * (a string is its own value and label). */
export function FilterSelect({
  label,
  value,
  onChange,
  any,
  options,
}: {
  label: ReactNode;
  value: string;
  onChange: (value: string) => void;
  any: string;
  options: (string | { value: string; label: string })[];
}) {
  return (
    <Field label={label}>
      {(p) => (
        <select {...p} value={value} onChange={(e) => onChange(e.target.value)}>
          <option value="">{any}</option>
          {options.map((o) =>
            typeof o === 'string' ? <option key={o}>{o}</option> : <option key={o.value} value={o.value}>{o.label}</option>,
          )}
        </select>
      )}
    </Field>
  );
}
