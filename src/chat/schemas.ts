import path from 'node:path';
import { z } from 'zod';
import { MAX_MESSAGE_CHARS, MAX_PAGE_SIZE, MAX_SYSTEM_PROMPT_CHARS, DEFAULT_PAGE_SIZE } from './limits.js';

/** Counts Unicode characters (code points), not UTF-16 units, so an emoji is one character. */
const charCount = (s: string) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

export const sessionIdSchema = z
  .guid({ message: 'must be a UUID such as 123e4567-e89b-12d3-a456-426614174000' })
  .transform((id) => id.toLowerCase());

/** What a session may ask for beyond the model settings (agent-only fields). */
export interface SessionPolicy {
  /** Tool names allowed in allowed_tools. */
  allowedTools: readonly string[];
  /** Absolute folder a session cwd must lie in. */
  cwdRoot: string;
}

export const PERMISSION_MODES = ['default', 'acceptEdits', 'bypassPermissions', 'plan'] as const;

/** A cwd, relative to the root or absolute, that resolves inside the root; stored resolved. */
function cwdSchema(root: string) {
  return z
    .string()
    .min(1)
    .max(4096)
    .refine((p) => !p.includes('\0'), { message: 'must not contain NUL characters' })
    .transform((p, ctx) => {
      const resolved = path.resolve(root, p);
      const relative = path.relative(root, resolved);
      if (relative.startsWith('..') || path.isAbsolute(relative)) {
        ctx.addIssue({ code: 'custom', message: `must be inside ${root}` });
        return z.NEVER;
      }
      return resolved;
    });
}

/** The settings a client may give a session; strict, so a misspelt field is an error, not ignored. */
export function sessionConfigSchema(policy: SessionPolicy) {
  const tools = new Set(policy.allowedTools);
  return z
    .object({
      system_prompt: z.string().refine((s) => charCount(s) <= MAX_SYSTEM_PROMPT_CHARS, {
        message: `must be at most ${MAX_SYSTEM_PROMPT_CHARS} characters`,
      }),
      model: z.string().trim().min(1).max(200).regex(/^[\w.:@/-]+$/, 'must be a model id such as claude-sonnet-4-6'),
      max_tokens: z.number().int().min(1).max(128_000),
      temperature: z.number().min(0).max(1),
      allowed_tools: z
        .array(z.string().refine((t) => tools.has(t), { message: `must be one of: ${policy.allowedTools.join(', ')}` }))
        .max(100),
      max_turns: z.number().int().min(1).max(1000),
      permission_mode: z.enum(PERMISSION_MODES),
      cwd: cwdSchema(policy.cwdRoot),
    })
    .partial()
    .strict();
}

export const chatRequestSchema = z
  .object({
    message: z
      .string({ message: 'is required and must be a string' })
      .refine((s) => s.trim().length > 0, { message: 'must not be empty or whitespace only' })
      .refine((s) => charCount(s) <= MAX_MESSAGE_CHARS, { message: `must be at most ${MAX_MESSAGE_CHARS} characters` }),
    session_id: sessionIdSchema.nullish(),
  })
  .strict();

export const sessionRefSchema = z.object({ session_id: sessionIdSchema }).strict();

export const idParamsSchema = z.object({ id: sessionIdSchema });

export const listSessionsQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(50),
  cursor: z.string().max(512).optional(),
});

export const historyQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
  after: z.coerce.number().int().min(0).default(0),
});

export type ChatRequest = z.infer<typeof chatRequestSchema>;
