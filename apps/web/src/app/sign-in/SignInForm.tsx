'use client';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useRouter, useSearchParams } from 'next/navigation';
import { useState } from 'react';
import { z } from 'zod';
import { api } from '@/lib/api';
import { safeNext, signInErrorText } from '@/lib/auth';
import { problemOf } from '@/lib/forms';

const emailRule = z.email('an email address, like alice@example.com');

/** Email and password; on success, back to the page that sent the person here. */
export function SignInForm() {
  const router = useRouter();
  const client = useQueryClient();
  const next = safeNext(useSearchParams().get('next'));
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [tried, setTried] = useState(false);
  const emailProblem = email.trim() ? problemOf(emailRule, email.trim()) : 'enter your email';
  const passwordProblem = password ? undefined : 'enter your password';

  const signIn = useMutation({
    mutationFn: () => api.signIn(email.trim(), password),
    onSuccess: async () => {
      // Whatever was cached belonged to whoever was here before: ask again, as the one now signed in.
      await client.resetQueries();
      router.replace(next);
    },
  });

  return (
    <div className="auth-page">
      <form
        className="card auth-card"
        aria-label="Sign in"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setTried(true);
          if (!emailProblem && !passwordProblem) signIn.mutate();
        }}
      >
        <h1>Sign in to Keyflow</h1>
        <div className="field">
          <label htmlFor="sign-in-email">Email</label>
          <input
            id="sign-in-email"
            type="email"
            autoComplete="username"
            autoFocus
            value={email}
            aria-invalid={tried && !!emailProblem}
            aria-describedby={tried && emailProblem ? 'sign-in-email-error' : undefined}
            onChange={(e) => setEmail(e.target.value)}
          />
          {tried && emailProblem && (
            <span className="field-error" id="sign-in-email-error">
              {emailProblem}
            </span>
          )}
        </div>
        <div className="field">
          <label htmlFor="sign-in-password">Password</label>
          <input
            id="sign-in-password"
            type="password"
            autoComplete="current-password"
            value={password}
            aria-invalid={tried && !!passwordProblem}
            aria-describedby={tried && passwordProblem ? 'sign-in-password-error' : undefined}
            onChange={(e) => setPassword(e.target.value)}
          />
          {tried && passwordProblem && (
            <span className="field-error" id="sign-in-password-error">
              {passwordProblem}
            </span>
          )}
        </div>
        {signIn.isError && (
          <p className="banner banner-error" role="alert" data-testid="sign-in-error">
            {signInErrorText(signIn.error)}
          </p>
        )}
        <button type="submit" className="primary" disabled={signIn.isPending || signIn.isSuccess}>
          {signIn.isPending || signIn.isSuccess ? 'Signing in…' : 'Sign in'}
        </button>
        <p className="muted small">Ask an admin of this Keyflow for an account or a new password.</p>
      </form>
    </div>
  );
}
