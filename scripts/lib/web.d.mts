export const WEB_DIR: string;
export const E2E_DIST_DIR: string;
export function webEnv(distDir?: string): Record<string, string>;
export function ensureWebBuild(options?: { distDir?: string; log?: (line: string) => void; onOutput?: (line: string) => void }): Promise<boolean>;
export function webStartCommand(options: { port: number; host?: string; controlUrl: string; distDir?: string }): {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
};
