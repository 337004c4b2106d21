import { RequireRole } from '@/components/RequireRole';
import { UserAdmin } from '@/features/users/UserAdmin';

export const metadata = { title: 'Users · Keyflow' };

export default function UsersPage() {
  return (
    <RequireRole role="admin">
      <UserAdmin />
    </RequireRole>
  );
}
