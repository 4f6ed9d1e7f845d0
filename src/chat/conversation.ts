import type { ConversationMessage } from '../providers/types.js';
import type { MessageRecord } from '../store/types.js';

/**
 * Builds the upstream conversation from the stored history. Assistant turns that produced no text
 * (failed before any output) and mock replies are skipped, and consecutive messages of one role are joined, so the
 * Messages API always receives strictly alternating turns that start with the user.
 */
export function buildConversation(history: readonly MessageRecord[]): ConversationMessage[] {
  const conversation: ConversationMessage[] = [];
  for (const message of history) {
    // A mock reply was never Claude's: Claude must not see it as its own earlier answer.
    if (message.content.trim() === '' || message.mode === 'mock') continue;
    const last = conversation[conversation.length - 1];
    if (last && last.role === message.role) {
      last.content = `${last.content}\n\n${message.content}`;
    } else if (last || message.role === 'user') {
      conversation.push({ role: message.role, content: message.content });
    }
  }
  return conversation;
}
