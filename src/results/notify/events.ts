/**
 * What the notification sender, the overdue check and the missed-run
 * notices (missed.ts) tell whoever listens (tests wait on these; logs are
 * for people). Listeners must not throw.
 */
export type NotifyEvents = {
  /** One attempt was made; `ok` false means it will be retried (or `gaveUp`). */
  attempt: [
    {
      id: number;
      event: string;
      ok: boolean;
      status: number | null;
      error: string | null;
      attempt: number;
      gaveUp: boolean;
    },
  ];
  /** Notifications the results wrote were moved from the outbox, to be sent. */
  'outbox:moved': [{ rows: number; notifications: number }];
  /** A look for due notifications (or at the outbox) failed (the database is away); tried again next poll. */
  'claim:failed': [{ error: string }];
  /** The overdue check marked `count` jobs overdue. */
  'overdue:marked': [{ count: number; jobIds: number[] }];
  'overdue:failed': [{ error: string }];
  /** Notices of runs the injector recorded missed were taken (missed.ts): their notifications written, the notices deleted. */
  'missed:taken': [{ notices: number; notifications: number; runIds: string[]; gone: number }];
  /** A take failed (nothing changed); tried again with backoff. `attempt` counts the failures in a row. */
  'missed:failed': [{ error: string; attempt: number }];
};
