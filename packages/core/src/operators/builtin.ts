import { operatorCatalog, type OperatorType } from '../operatorCatalog.ts';

/** A built-in's name, title, description and settings schema, as its catalog entry has them (written once). */
export function builtin<T extends OperatorType>(type: T) {
  const spec = operatorCatalog[type];
  return { kind: type, title: spec.label, description: spec.description, settings: spec.settings as (typeof operatorCatalog)[T]['settings'] };
}
