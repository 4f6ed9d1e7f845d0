import type { SessionService } from '../chat/session-service.js';
import type { TurnRunner } from '../chat/turn-runner.js';
import type { Readiness } from '../lifecycle/readiness.js';
import type { Provider } from '../providers/types.js';
import type { SessionStore } from '../store/types.js';

/** What the routes need, handed to each route plugin as its options (no globals). */
export interface Services {
  sessions: SessionService;
  turns: TurnRunner;
  store: SessionStore;
  provider: Provider;
  readiness: Readiness;
  version: string;
}

export interface ServicesOptions {
  services: Services;
}
