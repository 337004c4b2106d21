'use client';
import { useEffect, useId, useRef } from 'react';

/** A modal question with a destructive confirm button (native <dialog>, so focus and Escape behave). */
export function ConfirmDialog(props: {
  open: boolean;
  title: string;
  children?: React.ReactNode;
  confirmLabel: string;
  /** What the other button says: what happens if nothing is done ("Keep running"). */
  cancelLabel?: string;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  // One id per dialog: a page can hold several (cancel a job, delete a savepoint).
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.open && !d.open) d.showModal();
    if (!props.open && d.open) d.close();
  }, [props.open]);
  return (
    <dialog ref={ref} className="dialog" onCancel={props.onCancel} aria-labelledby={titleId}>
      <h2 id={titleId}>{props.title}</h2>
      <div className="dialog-body">{props.children}</div>
      <div className="dialog-actions">
        <button type="button" onClick={props.onCancel}>
          {props.cancelLabel ?? 'Cancel'}
        </button>
        <button type="button" className="danger" disabled={props.busy} onClick={props.onConfirm} autoFocus>
          {props.busy ? 'Working…' : props.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}
