import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isOperatorDefinition, operatorSpec, registerOperator, type OperatorDefinition } from '@keyflow/core';

/** A user operator a process loaded: its type, its version (`<type>@<content hash>`) and the module it came from. */
export interface LoadedOperator {
  kind: string;
  version: string;
  source: string;
}

const MODULE = /\.(ts|mts|js|mjs)$/;
const NOT_A_MODULE = /\.(test|spec)\.[mc]?[jt]s$|\.d\.[mc]?ts$/;

/** Whether an entry of the list names a path rather than a package. */
const looksLikePath = (entry: string) =>
  entry.startsWith('.') || isAbsolute(entry) || /[\\/]/.test(entry.replace(/^@[^/]+\//, '')) || MODULE.test(entry);

/** The module files an entry stands for: a file, a folder's modules (not its tests), or a package's entry point. */
function modulesOf(entry: string, cwd: string): { files: string[]; explicit: boolean } {
  const path = resolve(cwd, entry);
  if (existsSync(path)) {
    if (!statSync(path).isDirectory()) return { files: [path], explicit: true };
    const files = readdirSync(path)
      .filter((f) => MODULE.test(f) && !NOT_A_MODULE.test(f))
      .sort()
      .map((f) => join(path, f));
    if (!files.length) throw new Error(`KEYFLOW_OPERATORS: the folder ${path} holds no .ts or .js module`);
    return { files, explicit: false };
  }
  if (looksLikePath(entry)) throw new Error(`KEYFLOW_OPERATORS: no file or folder at ${path}`);
  try {
    return { files: [createRequire(join(cwd, 'package.json')).resolve(entry)], explicit: true };
  } catch {
    throw new Error(`KEYFLOW_OPERATORS: cannot find package '${entry}' from ${cwd} (install it, or name a file or folder)`);
  }
}

/**
 * Loads the user operators named in KEYFLOW_OPERATORS (comma-separated folders, files or package names) into the
 * catalog, each at version `<type>@<hash of its module's bytes>`: the control plane records those versions in a job
 * at deploy, and a worker runs a job's operator only at the version recorded. TypeScript modules need the process
 * to run with tsx (the control plane and workers do); compiled JavaScript loads anywhere. A module that exports no
 * operator is an error when named on its own, and passed over in a folder (a helper module); a type that is a
 * built-in's or that two modules define is an error.
 */
export async function loadOperators(list: string | undefined, cwd = process.cwd()): Promise<LoadedOperator[]> {
  const entries = (list ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const loaded: LoadedOperator[] = [];
  for (const entry of entries) {
    const { files, explicit } = modulesOf(entry, cwd);
    for (const file of files) {
      const hash = createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 12);
      let mod: Record<string, unknown>;
      try {
        mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
      } catch (err) {
        throw new Error(`KEYFLOW_OPERATORS: ${file} failed to load: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      const defs = [...new Set(Object.values(mod).filter(isOperatorDefinition))] as OperatorDefinition[];
      if (!defs.length && explicit) throw new Error(`KEYFLOW_OPERATORS: ${file} exports no operator (export default defineOperator({ … }))`);
      for (const def of defs) {
        const twice = loaded.find((l) => l.kind === def.kind);
        if (twice) throw new Error(`KEYFLOW_OPERATORS: operator '${def.kind}' is defined twice, in ${twice.source} and in ${file}`);
        const existing = operatorSpec(def.kind);
        if (existing && !existing.version) throw new Error(`KEYFLOW_OPERATORS: ${file} defines '${def.kind}', the name of a built-in operator`);
        const version = `${def.kind}@${hash}`;
        registerOperator(def, version);
        loaded.push({ kind: def.kind, version, source: file });
      }
    }
  }
  return loaded;
}
