'use client';
import { useEffect } from 'react';

export const LEAVE_MESSAGE = 'Leave the builder? Your unsaved changes will be lost.';

/** The in-app link a click would follow to another page, if any (not a new tab, a download or another site). */
function leavingLink(e: MouseEvent): HTMLAnchorElement | undefined {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return undefined;
  const link = e.target instanceof Element ? e.target.closest('a[href]') : null;
  if (!(link instanceof HTMLAnchorElement) || (link.target && link.target !== '_self') || link.hasAttribute('download')) return undefined;
  const to = new URL(link.href);
  return to.origin === location.origin && (to.pathname !== location.pathname || to.search !== location.search) ? link : undefined;
}

/**
 * While `active`, leaving the page asks first: the browser's own prompt on reload, close or typed address, and a
 * confirmation on in-app links (the App Router has no route-change event to hook, so their clicks are caught first).
 */
export function useLeaveGuard(active: boolean): void {
  useEffect(() => {
    if (!active) return;
    const onBeforeUnload = (e: BeforeUnloadEvent) => e.preventDefault();
    // Capturing on the document runs before React's handlers on its root, so a refusal stops Next's Link too.
    const onClick = (e: MouseEvent) => {
      if (leavingLink(e) && !window.confirm(LEAVE_MESSAGE)) {
        e.preventDefault();
        e.stopPropagation();
      }
    };
    window.addEventListener('beforeunload', onBeforeUnload);
    document.addEventListener('click', onClick, true);
    return () => {
      window.removeEventListener('beforeunload', onBeforeUnload);
      document.removeEventListener('click', onClick, true);
    };
  }, [active]);
}
