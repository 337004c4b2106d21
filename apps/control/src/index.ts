export { startControl, type ControlHandle } from './control.ts';
export { controlEnv, type ControlEnv } from './env.ts';
export { transitions } from './jobs/lifecycle.ts';
