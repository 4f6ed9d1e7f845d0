import type { z } from 'zod';
import { HttpError } from './http-error.js';

/** Parses input with a zod schema; failures become 422 with one readable line per problem. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.join('.') : where,
    message: issue.message,
  }));
  const summary = details.map((d) => `${d.field}: ${d.message}`).join('; ');
  throw new HttpError(422, 'validation_error', `Invalid ${where}: ${summary}`, details);
}
