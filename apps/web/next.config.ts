import type { NextConfig } from 'next';

const config: NextConfig = {
  // The browser tests build into their own folder, so a dashboard served from `.next` keeps running meanwhile.
  distDir: process.env.KEYFLOW_WEB_DIST || '.next',
  // Socket.IO's path is /socket.io/ with the slash: keep it as it is for the proxy.
  skipTrailingSlashRedirect: true,
  transpilePackages: ['@keyflow/api', '@keyflow/core'],
};

export default config;
