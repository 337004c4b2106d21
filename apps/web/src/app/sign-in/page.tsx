import { Suspense } from 'react';
import { SignInForm } from './SignInForm';

export const metadata = { title: 'Sign in · Keyflow' };

export default function SignInPage() {
  return (
    <Suspense>
      <SignInForm />
    </Suspense>
  );
}
