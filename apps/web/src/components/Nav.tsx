'use client';
import Link from 'next/link';
import { usePathname } from 'next/navigation';
import { useLiveStatus } from '@/lib/socket';

const LINKS = [
  { href: '/', label: 'Jobs', match: (p: string) => p === '/' || p.startsWith('/jobs') },
  { href: '/pipelines', label: 'Pipelines', match: (p: string) => p.startsWith('/pipelines') },
  { href: '/workers', label: 'Workers', match: (p: string) => p.startsWith('/workers') },
];

export function Nav() {
  const path = usePathname();
  const live = useLiveStatus();
  return (
    <header className="nav">
      <Link href="/" className="brand">
        <span className="brand-mark" aria-hidden>
          ⟿
        </span>
        Keyflow
      </Link>
      <nav>
        {LINKS.map((l) => (
          <Link key={l.href} href={l.href} className={l.match(path) ? 'active' : undefined}>
            {l.label}
          </Link>
        ))}
      </nav>
      <span className={`live live-${live}`} data-testid="live-status" title="Socket.IO connection to the control plane">
        <span className="dot" aria-hidden />
        {live === 'live' ? 'Live' : live === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
      </span>
    </header>
  );
}
