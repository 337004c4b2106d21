import '@xyflow/react/dist/style.css';
import './globals.css';
import type { Metadata } from 'next';
import { ApiStatusBanner } from '@/components/ApiStatusBanner';
import { AuthGate } from '@/components/AuthGate';
import { Nav } from '@/components/Nav';
import { Providers } from './providers';

export const metadata: Metadata = {
  title: 'Keyflow',
  description: 'Design keyed pipelines, deploy them, and watch them run and checkpoint live.',
};

export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en">
      <body>
        <Providers>
          <Nav />
          <ApiStatusBanner />
          <main>
            <AuthGate>{children}</AuthGate>
          </main>
        </Providers>
      </body>
    </html>
  );
}
