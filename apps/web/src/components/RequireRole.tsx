'use client';
import { mayAct, type Role } from '@keyflow/api';
import { Empty } from '@/components/States';
import { useRole } from '@/lib/auth';

/** Shows its page only to a role that may see it; anyone else is told which role it needs (the server refuses them too). */
export function RequireRole({ role: needed, children }: { role: Role; children: React.ReactNode }) {
  const role = useRole();
  if (role && mayAct(role, needed)) return children;
  return (
    <div className="page">
      <Empty title={`This page needs the ${needed} role.`}>{role ? `You are signed in as a ${role}.` : 'Your role is not known yet.'}</Empty>
    </div>
  );
}
