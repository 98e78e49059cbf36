export { NotifySender } from './sender';
export { OverdueCheck, markOverdueJobs } from './overdue';
export { MissedNotices, takeMissedNotices } from './missed';
export type { NotifyEvents } from './events';
export { recordGlobalTargets } from './global-targets';
