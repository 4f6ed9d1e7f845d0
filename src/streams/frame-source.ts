/** A frame as kept in a stream log: its sequence number in the turn and its serialized `data:` JSON. */
export interface LoggedFrame {
  readonly seq: number;
  readonly data: string;
}

export interface FrameBatch {
  frames: LoggedFrame[];
  /** The batch holds the turn's last frame (or the turn ended with nothing more to read). */
  ended: boolean;
  /** Frames after the requested seq were trimmed from the log: the client cannot be served without a gap. */
  gap: boolean;
  /** The log vanished before the turn ended (its writer died, or Redis lost it). */
  lost: boolean;
}

/** Where a client's last event stands in a log: resumable, trimmed away, or beyond what was logged. */
export type ResumePosition = 'ok' | 'gap' | 'ahead';

/** Where a connection reads a turn's frames from: the local log, or a log another instance writes. */
export interface FrameSource {
  readonly turnId: string;
  readonly sessionId: string;
  /** Checked before the stream opens, so a resume that cannot be served is refused with a status. */
  position(afterSeq: number): Promise<ResumePosition>;
  /** Waits until there are frames after `afterSeq` (or the turn ended, or `signal` aborted). */
  read(afterSeq: number, signal: AbortSignal): Promise<FrameBatch>;
  /**
   * Bytes logged after `afterSeq` and not yet read; Infinity once some of them were trimmed; 0 when
   * unknown (remote logs are pulled on demand).
   */
  backlogBytes(afterSeq: number): number;
  /** Calls `listener` whenever frames are appended (local logs only); returns the unsubscribe. */
  onAppend(listener: () => void): () => void;
  /** The fallback that answered, for the X-Fallback-Strategy trailer (local logs only). */
  readonly fallbackStrategy: string | undefined;
  /** This reader is done (connection closed): frees what it holds. */
  release(): void;
}

export const NO_FRAMES: FrameBatch = Object.freeze({ frames: [], ended: true, gap: false, lost: false }) as FrameBatch;
