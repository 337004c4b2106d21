import { cloneElement } from 'react';

/** A labelled form field with its help and its problem, the input given as the only child (it gets the id). */
export function Field({
  id,
  label,
  help,
  problem,
  children,
}: {
  id: string;
  label: string;
  help?: string;
  problem?: string;
  children: React.ReactElement<React.InputHTMLAttributes<HTMLInputElement>>;
}) {
  const input = cloneElement(children, {
    id,
    'aria-invalid': !!problem,
    'aria-describedby': problem ? `${id}-error` : help ? `${id}-help` : undefined,
  });
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {input}
      {problem ? (
        <span className="field-error" id={`${id}-error`}>
          {problem}
        </span>
      ) : (
        help && (
          <span className="help" id={`${id}-help`}>
            {help}
          </span>
        )
      )}
    </div>
  );
}
