import { RequireRole } from '@/components/RequireRole';
import { ApiKeyAdmin } from '@/features/apiKeys/ApiKeyAdmin';

export const metadata = { title: 'API keys · Keyflow' };

export default function ApiKeysPage() {
  return (
    <RequireRole role="admin">
      <ApiKeyAdmin />
    </RequireRole>
  );
}
