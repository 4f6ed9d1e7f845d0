/** Input limits of the wire contract (design.md). */
export const MAX_MESSAGE_CHARS = 50_000;
export const MAX_SYSTEM_PROMPT_CHARS = 10_000;
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
