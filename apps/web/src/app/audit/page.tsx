import { RequireRole } from '@/components/RequireRole';
import { AuditLog } from '@/features/audit/AuditLog';

export const metadata = { title: 'Audit · Keyflow' };

export default function AuditPage() {
  return (
    <RequireRole role="admin">
      <AuditLog />
    </RequireRole>
  );
}
