/**
 * What the notification sender and the overdue check tell whoever listens
 * (tests wait on these; logs are for people). Listeners must not throw.
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
  /** A look for due notifications failed (the database is away); tried again next poll. */
  'claim:failed': [{ error: string }];
  /** The overdue check marked `count` jobs overdue. */
  'overdue:marked': [{ count: number; jobIds: number[] }];
  'overdue:failed': [{ error: string }];
};
